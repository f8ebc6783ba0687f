#ifndef OC_BCRYPT_PAIR_H
#define OC_BCRYPT_PAIR_H

#include <stdint.h>

/// "$2b$" + two cost digits + "$" + 22 salt characters + 31 hash characters + NUL.
#define OC_BCRYPT_HASHSPACE 61
/// The setting alone ("$2b$08$" + 22 salt characters) + NUL.
#define OC_BCRYPT_SETTINGSPACE 30
#define OC_BCRYPT_SALTBYTES 16

/// One password to hash with one setting.
typedef struct oc_bcrypt_job {
    /// The password, NUL-terminated (bcrypt uses at most 72 bytes of it).
    const char *key;
    /// "$2a$" or "$2b$", the cost, "$", 22 salt characters; anything after them (a stored hash's
    /// own digest) is ignored, so a stored hash is its own setting.
    const char *setting;
    /// Out: the hash, NUL-terminated, when `failed` is 0 (OC_BCRYPT_HASHSPACE bytes).
    char *hash;
    /// Out: 1 when the setting is malformed.
    int failed;
} oc_bcrypt_job;

/// Hashes one or two jobs (`count` 1 or 2). Two jobs of the same cost run interleaved on this
/// thread in about 1.1 times the time of one; jobs of different costs run one after the other.
void oc_bcrypt_run(oc_bcrypt_job *jobs, int count);

/// Writes the setting for `cost` (4 to 31) and the 16 salt bytes at `salt` into `setting`
/// (OC_BCRYPT_SETTINGSPACE bytes). Returns -1 when the cost is out of range.
int oc_bcrypt_setting(int cost, const uint8_t *salt, char *setting);

/// 1 when the NUL-terminated strings are equal; the time depends on their lengths only.
int oc_bcrypt_equal(const char *a, const char *b);

#endif
