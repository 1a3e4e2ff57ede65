/* strbuf: growable byte buffer and the JSON string escaper behind the node's log file.
 * Must never emit invalid JSON or invalid UTF-8 from append_json_string, and never
 * return on allocation failure (it aborts, as documented in the header). */
#include "common/strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "common/xalloc.h"

#define STRBUF_MIN_CAP 64

/* Out of line and cold: the common case of "there is room" stays a compare and a branch. */
static __attribute__((noinline, cold)) void strbuf_grow(struct strbuf *sb, size_t extra)
{
    /* +1 keeps room for the terminating NUL after every append. */
    if (extra > SIZE_MAX - sb->len - 1)
        abort();
    size_t need = sb->len + extra + 1;
    size_t cap = sb->cap ? sb->cap : STRBUF_MIN_CAP;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    sb->data = xrealloc(sb->data, cap);
    sb->cap = cap;
}

static inline void strbuf_reserve(struct strbuf *sb, size_t extra)
{
    if (sb->cap - sb->len <= extra)
        strbuf_grow(sb, extra);
}

void strbuf_init(struct strbuf *sb)
{
    sb->data = NULL;
    sb->len = 0;
    sb->cap = 0;
}

void strbuf_free(struct strbuf *sb)
{
    free(sb->data);
    strbuf_init(sb);
}

void strbuf_reset(struct strbuf *sb)
{
    sb->len = 0;
    if (sb->data)
        sb->data[0] = '\0';
}

void strbuf_append(struct strbuf *sb, const char *data, size_t len)
{
    if (len == 0)
        return;
    strbuf_reserve(sb, len);
    memcpy(sb->data + sb->len, data, len);
    sb->len += len;
    sb->data[sb->len] = '\0';
}

char *strbuf_room(struct strbuf *sb, size_t n)
{
    strbuf_reserve(sb, n);
    return sb->data + sb->len;
}

void strbuf_commit(struct strbuf *sb, char *end)
{
    sb->len = (size_t)(end - sb->data);
    sb->data[sb->len] = '\0';
}

void strbuf_puts(struct strbuf *sb, const char *s)
{
    strbuf_append(sb, s, strlen(s));
}

void strbuf_putc(struct strbuf *sb, char c)
{
    strbuf_reserve(sb, 1);
    sb->data[sb->len++] = c;
    sb->data[sb->len] = '\0';
}

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    /* First try in whatever room is left; most calls fit and format only once. */
    strbuf_reserve(sb, 64);
    size_t room = sb->cap - sb->len;
    va_start(ap, fmt);
    int n = vsnprintf(sb->data + sb->len, room, fmt, ap);
    va_end(ap);
    if (n < 0)
        abort(); /* only on a bad format string: a programming error */
    if ((size_t)n >= room) {
        strbuf_reserve(sb, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    sb->len += (size_t)n;
}

char *strbuf_put_u64(char *p, unsigned long long value)
{
    char digits[24];
    size_t n = sizeof digits;
    do {
        digits[--n] = (char)('0' + value % 10);
        value /= 10;
    } while (value);
    memcpy(p, digits + n, sizeof digits - n);
    return p + sizeof digits - n;
}

void strbuf_append_u64(struct strbuf *sb, unsigned long long value)
{
    strbuf_commit(sb, strbuf_put_u64(strbuf_room(sb, 24), value));
}

void strbuf_append_i64(struct strbuf *sb, long long value)
{
    if (value < 0) {
        strbuf_putc(sb, '-');
        strbuf_append_u64(sb, 0ull - (unsigned long long)value);
    } else {
        strbuf_append_u64(sb, (unsigned long long)value);
    }
}

void strbuf_append_padded(struct strbuf *sb, unsigned long long value, unsigned width)
{
    char digits[24];
    if (width > sizeof digits)
        width = sizeof digits;
    for (unsigned i = width; i > 0; i--) {
        digits[i - 1] = (char)('0' + value % 10);
        value /= 10;
    }
    strbuf_append(sb, digits, width);
}

const char *strbuf_cstr(struct strbuf *sb)
{
    if (!sb->data)
        return "";
    sb->data[sb->len] = '\0';
    return sb->data;
}

/* Byte classes for the JSON escaper: everything but SAFE breaks the memcpy run. */
enum {
    JC_SAFE = 0, /* printable ASCII copied as is */
    JC_ESC,      /* control byte, quote, backslash, DEL: escaped */
    JC_UTF2,     /* C2..DF: lead of a 2-byte sequence */
    JC_UTF3,     /* E0..EF: lead of a 3-byte sequence */
    JC_UTF4,     /* F0..F4: lead of a 4-byte sequence */
    JC_BAD,      /* 80..C1, F5..FF: never valid where a character starts */
};

#define R4(x) x, x, x, x
#define R16(x) R4(x), R4(x), R4(x), R4(x)
static const unsigned char json_class[] = {
    R16(JC_ESC), R16(JC_ESC),                         /* 00..1F */
    JC_SAFE, JC_SAFE, JC_ESC, JC_SAFE, R4(JC_SAFE), R4(JC_SAFE), R4(JC_SAFE), /* 20..2F: '"' */
    R16(JC_SAFE),                                     /* 30..3F */
    R16(JC_SAFE),                                     /* 40..4F */
    R4(JC_SAFE), R4(JC_SAFE), R4(JC_SAFE),            /* 50..5B */
    JC_ESC, JC_SAFE, JC_SAFE, JC_SAFE,                /* 5C '\\' .. 5F */
    R16(JC_SAFE),                                     /* 60..6F */
    R4(JC_SAFE), R4(JC_SAFE), R4(JC_SAFE),            /* 70..7B */
    JC_SAFE, JC_SAFE, JC_SAFE, JC_ESC,                /* 7C..7F: DEL escaped */
    R16(JC_BAD), R16(JC_BAD), R16(JC_BAD), R16(JC_BAD), /* 80..BF continuation */
    JC_BAD, JC_BAD,                                   /* C0, C1: always overlong */
    JC_UTF2, JC_UTF2, R4(JC_UTF2), R4(JC_UTF2), R4(JC_UTF2), R4(JC_UTF2), R4(JC_UTF2),
    R4(JC_UTF2), R4(JC_UTF2),                         /* C2..DF */
    R16(JC_UTF3),                                     /* E0..EF */
    JC_UTF4, JC_UTF4, JC_UTF4, JC_UTF4, JC_UTF4,      /* F0..F4 */
    JC_BAD, JC_BAD, JC_BAD, R4(JC_BAD), R4(JC_BAD),   /* F5..FF */
};
#undef R4
#undef R16

_Static_assert(sizeof json_class == 256, "json_class must have exactly one entry per byte");

static inline int is_cont(unsigned char c)
{
    return (c & 0xC0) == 0x80;
}

/* Length of the valid UTF-8 sequence starting at p (lead class `cls`), or 0 if invalid.
 * Follows Unicode Table 3-7, which rules out overlongs, surrogates and > U+10FFFF. */
static inline size_t utf8_valid_len(const unsigned char *p, size_t avail, unsigned cls)
{
    unsigned char c0 = p[0];
    switch (cls) {
    case JC_UTF2:
        return avail >= 2 && is_cont(p[1]) ? 2 : 0;
    case JC_UTF3: {
        if (avail < 3 || !is_cont(p[2]))
            return 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c0 == 0xE0)
            lo = 0xA0; /* below is overlong */
        else if (c0 == 0xED)
            hi = 0x9F; /* above is a UTF-16 surrogate */
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    case JC_UTF4: {
        if (avail < 4 || !is_cont(p[2]) || !is_cont(p[3]))
            return 0;
        unsigned char lo = 0x80, hi = 0xBF;
        if (c0 == 0xF0)
            lo = 0x90; /* below is overlong */
        else if (c0 == 0xF4)
            hi = 0x8F; /* above is past U+10FFFF */
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    default:
        return 0;
    }
}

/* True when none of the 8 bytes at p needs attention: all printable ASCII but '"' and
 * '\\'. Word-at-a-time tests (exact, no false negatives) let typical log text skip the
 * table lookup for most bytes. */
static inline int word_is_safe(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ull;
    const uint64_t highs = 0x8080808080808080ull;
    uint64_t w;
    memcpy(&w, p, sizeof w);
    uint64_t below_space = (w - ones * 0x20) & ~w & highs; /* some byte < 0x20 */
    uint64_t above_tilde = ((w + ones * (127 - 0x7e)) | w) & highs; /* some byte > 0x7e */
    uint64_t q = w ^ (ones * '"');
    uint64_t b = w ^ (ones * '\\');
    uint64_t quote = (q - ones) & ~q & highs;
    uint64_t backslash = (b - ones) & ~b & highs;
    return (below_space | above_tilde | quote | backslash) == 0;
}

/* The first byte in [p, end) that needs attention (see word_is_safe), or a byte near the end
 * from where the caller goes on byte by byte. The log writer runs this over every line's
 * text: sixteen bytes per step with SSE2, eight without. */
static inline const unsigned char *skip_safe(const unsigned char *p, const unsigned char *end)
{
#ifdef __SSE2__
    const __m128i space = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    while (end - p >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)p);
        /* Signed compares: bytes >= 0x80 are negative, so not above 0x1f. */
        __m128i printable = _mm_and_si128(_mm_cmpgt_epi8(v, space), _mm_cmplt_epi8(v, del));
        __m128i special = _mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash));
        unsigned unsafe = ~(unsigned)_mm_movemask_epi8(_mm_andnot_si128(special, printable)) & 0xffffu;
        if (unsafe)
            return p + __builtin_ctz(unsafe);
        p += 16;
    }
#endif
    while (end - p >= 8 && word_is_safe(p))
        p += 8;
    return p;
}

void strbuf_append_json_string(struct strbuf *sb, const char *data, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)data;
    const unsigned char *end = p + len;

    /* Most lines need no escaping: reserve for that once so runs copy without checks. */
    strbuf_reserve(sb, len);
    while (p < end) {
        /* A run of bytes that go out unchanged: printable ASCII and valid UTF-8. */
        const unsigned char *run = p;
        for (;;) {
            p = skip_safe(p, end);
            while (p < end && json_class[*p] == JC_SAFE)
                p++;
            if (p == end || json_class[*p] < JC_UTF2)
                break;
            size_t n = utf8_valid_len(p, (size_t)(end - p), json_class[*p]);
            if (n == 0)
                break;
            p += n;
        }
        if (p > run) {
            size_t n = (size_t)(p - run);
            strbuf_reserve(sb, n);
            memcpy(sb->data + sb->len, run, n);
            sb->len += n;
        }
        if (p == end)
            break;

        /* p is at one byte that cannot go out as is; at most 6 bytes replace it. */
        strbuf_reserve(sb, 6);
        char *o = sb->data + sb->len;
        unsigned char c = *p++;
        if (json_class[c] != JC_ESC) {
            /* Invalid UTF-8: one U+FFFD per byte, then resync on the next byte. */
            o[0] = (char)0xEF;
            o[1] = (char)0xBF;
            o[2] = (char)0xBD;
            sb->len += 3;
            continue;
        }
        char shortform = 0;
        switch (c) {
        case '"': shortform = '"'; break;
        case '\\': shortform = '\\'; break;
        case '\n': shortform = 'n'; break;
        case '\r': shortform = 'r'; break;
        case '\t': shortform = 't'; break;
        case '\b': shortform = 'b'; break;
        case '\f': shortform = 'f'; break;
        default: break;
        }
        o[0] = '\\';
        if (shortform) {
            o[1] = shortform;
            sb->len += 2;
        } else {
            o[1] = 'u';
            o[2] = '0';
            o[3] = '0';
            o[4] = hex[c >> 4];
            o[5] = hex[c & 0xF];
            sb->len += 6;
        }
    }
    if (sb->data)
        sb->data[sb->len] = '\0';
}
