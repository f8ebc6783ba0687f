// Written in C because Swift's Glibc module does not import <link.h>.
#define _GNU_SOURCE
#include "CReadOnlySegments.h"

#if defined(__linux__)
#include <link.h>
#include <stdint.h>
#include <sys/auxv.h>
#include <sys/mman.h>
#include <unistd.h>

struct context {
    uintptr_t page;
    uintptr_t vdso;
    size_t advised;
};

// An object whose code the dynamic linker had to write into (text relocations) holds private
// copies in its read-only segments; unmapping them would bring back the unrelocated file.
static int has_text_relocations(const struct dl_phdr_info *info) {
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_DYNAMIC) continue;
        for (const ElfW(Dyn) *entry = (const ElfW(Dyn) *)(info->dlpi_addr + header->p_vaddr); entry->d_tag != DT_NULL; entry++) {
            if (entry->d_tag == DT_TEXTREL) return 1;
            if (entry->d_tag == DT_FLAGS && (entry->d_un.d_val & DF_TEXTREL)) return 1;
        }
    }
    return 0;
}

// Called with the dynamic linker's lock held, so no object is loaded or unloaded meanwhile.
static int unmap_object(struct dl_phdr_info *info, size_t size, void *data) {
    (void)size;
    struct context *context = data;
    // The vDSO is the kernel's, not a file.
    if (context->vdso != 0 && info->dlpi_addr == context->vdso) return 0;
    if (has_text_relocations(info)) return 0;
    uintptr_t relro_start = 0, relro_end = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type == PT_GNU_RELRO) {
            relro_start = info->dlpi_addr + header->p_vaddr;
            relro_end = relro_start + header->p_memsz;
        }
    }
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *header = &info->dlpi_phdr[i];
        if (header->p_type != PT_LOAD || (header->p_flags & PF_W)) continue;
        // Whole pages inside the segment's file-backed part only.
        uintptr_t start = info->dlpi_addr + header->p_vaddr;
        uintptr_t end = start + header->p_filesz;
        start = (start + context->page - 1) & ~(context->page - 1);
        end &= ~(context->page - 1);
        // Relocated data made read-only afterwards is a private copy (normally inside a
        // writable segment; checked anyway).
        if (start >= end || (start < relro_end && relro_start < end)) continue;
        if (madvise((void *)start, end - start, MADV_DONTNEED) == 0) context->advised += end - start;
    }
    return 0;
}

size_t opencourse_unmap_read_only_segments(void) {
    struct context context = { (uintptr_t)sysconf(_SC_PAGESIZE), (uintptr_t)getauxval(AT_SYSINFO_EHDR), 0 };
    dl_iterate_phdr(unmap_object, &context);
    return context.advised;
}
#else
size_t opencourse_unmap_read_only_segments(void) { return 0; }
#endif
