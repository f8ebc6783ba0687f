#ifndef C_READ_ONLY_SEGMENTS_H
#define C_READ_ONLY_SEGMENTS_H

#include <stddef.h>

/// Unmaps (MADV_DONTNEED) the pages of every loaded object's read-only segments: code and
/// constants, which are clean copies of their files. Returns the bytes advised; 0 where the
/// platform has no dl_iterate_phdr.
size_t opencourse_unmap_read_only_segments(void);

#endif
