/* fuzz_util: what the fuzz targets share: a reader that cuts the fuzzer's bytes into
 * fields, frames and lengths the same way in every target (and in make_seeds.py), a scratch
 * directory in RAM, and a loud check that aborts so libFuzzer records the input.
 * Header-only, for the tests/fuzz/fuzz_*.c harnesses; never linked into devnode. */
#ifndef DEVNODE_FUZZ_UTIL_H
#define DEVNODE_FUZZ_UTIL_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* An invariant of the code under test: print why and abort, so the input becomes a crash. */
#define FUZZ_CHECK(cond, ...)                                                                     \
    do {                                                                                          \
        if (!(cond)) {                                                                            \
            fprintf(stderr, "fuzz check failed at %s:%d: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                                         \
            fputc('\n', stderr);                                                                  \
            abort();                                                                              \
        }                                                                                         \
    } while (0)

/* For the harnesses' own checking loops: their branches are not the code under test, and
 * tracing every compare in them only slows the run and clutters the coverage. */
#define FUZZ_NO_COVERAGE __attribute__((no_sanitize("coverage")))

struct fuzz_in {
    const uint8_t *p;
    size_t n;
};

static inline uint8_t fuzz_u8(struct fuzz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

/* A length: one byte 0..254, or 0xff followed by a little-endian u16. Short forms keep the
 * small frames (version, type, ids) easy for the fuzzer to mutate. */
static inline size_t fuzz_len(struct fuzz_in *in)
{
    uint8_t b = fuzz_u8(in);
    if (b != 0xff)
        return b;
    size_t lo = fuzz_u8(in), hi = fuzz_u8(in);
    return lo | hi << 8;
}

/* Up to len bytes (fewer at the end of the input); *got receives how many. */
static inline const uint8_t *fuzz_bytes(struct fuzz_in *in, size_t len, size_t *got)
{
    if (len > in->n)
        len = in->n;
    const uint8_t *p = in->p;
    in->p += len;
    in->n -= len;
    *got = len;
    return p;
}

/* The frame layout of the wire and rpcwire targets:
 *   [flags][len f1][f1]...[len f(n-1)][f(n-1)][fn = the rest]
 * flags: bits 0-2 = frames - 1 (1..8), bit 3 = the receiving socket is a ROUTER. */
#define FUZZ_MAX_FRAMES 8

struct fuzz_frames {
    const uint8_t *data[FUZZ_MAX_FRAMES];
    size_t len[FUZZ_MAX_FRAMES];
    size_t count;
    int routed;
};

static inline void fuzz_split_frames(const uint8_t *data, size_t size, struct fuzz_frames *fr)
{
    struct fuzz_in in = {data, size};
    uint8_t flags = fuzz_u8(&in);
    fr->count = 1 + (flags & 7u);
    fr->routed = (flags & 8u) != 0;
    for (size_t i = 0; i + 1 < fr->count; i++)
        fr->data[i] = fuzz_bytes(&in, fuzz_len(&in), &fr->len[i]);
    fr->data[fr->count - 1] = fuzz_bytes(&in, in.n, &fr->len[fr->count - 1]);
}

/* A private scratch directory, in RAM when /dev/shm is there (no disk writes per input). */
static inline void fuzz_scratch_dir(char *out, size_t cap, const char *what)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(out, cap, "%s/devnode-fuzz-%s-XXXXXX", base, what);
    if (!mkdtemp(out)) {
        perror("mkdtemp");
        abort();
    }
}

/* Removes the files of dir (one level; the targets never make deeper trees). */
static inline void fuzz_empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        unlink(path);
    }
    closedir(d);
}

static inline void fuzz_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

#endif
