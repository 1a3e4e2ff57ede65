/* fuzz_framer: feeds a byte stream to node/framer.c in input-chosen chunks and compares every
 * record with an independent reference framing of the same bytes (content, flags, cuts), plus
 * the totals: bytes out == bytes in - newlines - CRs of CRLFs, no record over the limit.
 * Input: [seed u32][max chunk log2][repeat][split] then data; the stream is
 * data[0:split] repeated, then data[split:], so lines longer than 64 KiB are reachable from
 * small inputs. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "node/framer.h"
#include "tests/fuzz/fuzz_util.h"

#define STREAM_MAX (3 * FRAMER_MAX_LINE + 64)

struct expect {
    size_t off, len;
    unsigned flags;
};

struct run {
    const char *stream;
    const struct expect *want;
    size_t want_count;
    size_t got;
    size_t bytes_out;
};

/* The framing the framer must produce, from the spec in node/framer.h, written plainly. */
FUZZ_NO_COVERAGE static size_t reference(const char *s, size_t n, struct expect *out)
{
    size_t count = 0, pos = 0;
    while (pos < n) {
        const char *nl = memchr(s + pos, '\n', n - pos);
        size_t content = nl ? (size_t)(nl - (s + pos)) : n - pos;
        if (nl && content > 0 && s[pos + content - 1] == '\r')
            content--;
        size_t off = pos, rest = content;
        while (rest > FRAMER_MAX_LINE) {
            out[count++] = (struct expect){off, FRAMER_MAX_LINE, FRAMER_SPLIT};
            off += FRAMER_MAX_LINE;
            rest -= FRAMER_MAX_LINE;
        }
        out[count++] = (struct expect){off, rest, nl ? 0u : FRAMER_UNTERMINATED};
        pos = nl ? (size_t)(nl - s) + 1 : n;
    }
    return count;
}

FUZZ_NO_COVERAGE static void on_line(void *ctx, const char *text, size_t len, unsigned flags)
{
    struct run *r = ctx;
    FUZZ_CHECK(len <= FRAMER_MAX_LINE, "record of %zu bytes", len);
    FUZZ_CHECK(r->got < r->want_count, "record %zu beyond the %zu expected", r->got, r->want_count);
    const struct expect *w = &r->want[r->got];
    FUZZ_CHECK(len == w->len && flags == w->flags, "record %zu: got %zu bytes flags %u, want %zu bytes flags %u",
               r->got, len, flags, w->len, w->flags);
    FUZZ_CHECK(len == 0 || memcmp(text, r->stream + w->off, len) == 0, "record %zu: bytes differ", r->got);
    r->got++;
    r->bytes_out += len;
}

static uint32_t xorshift(uint32_t *s)
{
    uint32_t x = *s;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return *s = x;
}

/* data[0:split] `repeat` times (as many whole copies as fit), then data[split:]; by doubling,
 * so a 1-byte prefix repeated 131072 times costs 17 copies. Returns the stream's length. */
FUZZ_NO_COVERAGE static size_t build_stream(char *stream, const char *data, size_t len, size_t split,
                                            size_t repeat)
{
    size_t n = 0;
    size_t copies = split == 0 ? 0 : STREAM_MAX / split < repeat ? STREAM_MAX / split : repeat;
    if (copies > 0) {
        size_t want = copies * split;
        memcpy(stream, data, split);
        for (n = split; n < want; n += n < want - n ? n : want - n)
            memcpy(stream + n, stream, n < want - n ? n : want - n);
    }
    size_t tail = len - split;
    if (tail > STREAM_MAX - n)
        tail = STREAM_MAX - n;
    memcpy(stream + n, data + split, tail);
    return n + tail;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char stream[STREAM_MAX];
    static struct expect want[STREAM_MAX + 1];
    if (size < 7)
        return 0;
    uint32_t seed = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
    unsigned chunk_log2 = data[4] % 18;
    /* Mostly short streams (fast); the top 16 values repeat the prefix 4..131072 times. */
    size_t repeat = data[5] < 240 ? 1u + data[5] % 16 : (size_t)4 << (data[5] - 240);
    const char *body = (const char *)data + 7;
    size_t body_len = size - 7;
    size_t split = body_len * data[6] / 255;

    size_t n = build_stream(stream, body, body_len, split, repeat);

    size_t newlines = 0, crlf = 0;
    for (const char *p = stream, *nl; (nl = memchr(p, '\n', (size_t)(stream + n - p))); p = nl + 1) {
        newlines++;
        crlf += nl > stream && nl[-1] == '\r';
    }

    struct run r = {.stream = stream, .want = want, .want_count = reference(stream, n, want)};
    struct framer f;
    framer_init(&f);
    uint32_t rng = seed ? seed : 1;
    size_t max_chunk = (size_t)1 << chunk_log2;
    if (max_chunk < n / 2048)
        max_chunk = n / 2048; /* long streams in tiny chunks cost time and find nothing new */
    for (size_t pos = 0; pos < n;) {
        size_t c = 1 + xorshift(&rng) % max_chunk;
        if (c > n - pos)
            c = n - pos;
        FUZZ_CHECK(framer_feed(&f, stream + pos, c, on_line, &r) == 0, "framer_feed failed");
        FUZZ_CHECK(f.len <= FRAMER_MAX_LINE + 1 && f.cap <= FRAMER_MAX_LINE + 1, "pending %zu, cap %zu", f.len,
                   f.cap);
        pos += c;
    }
    framer_flush(&f, on_line, &r);
    FUZZ_CHECK(f.len == 0, "flush left %zu bytes pending", f.len);
    framer_free(&f);

    FUZZ_CHECK(r.got == r.want_count, "%zu records, want %zu", r.got, r.want_count);
    FUZZ_CHECK(r.bytes_out == n - newlines - crlf, "%zu bytes out of %zu in (%zu newlines, %zu CRLF)", r.bytes_out,
               n, newlines, crlf);
    return 0;
}
