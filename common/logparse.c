/* logparse: finds the trace id and the level in the text of one log line.
 * Runs on every line of a burst, so it scans with memchr/memmem and never allocates;
 * it must never read outside [text, text + len) (lines are not NUL-terminated). */
#include "common/logparse.h"

#include <ctype.h>

#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* ---- trace id ---------------------------------------------------------------------- */

static inline int is_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static inline int is_trace_char(unsigned char c)
{
    return is_word(c) || c == '-';
}

static inline int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

static const char *skip_spaces(const char *p, const char *end)
{
    while (p < end && is_space((unsigned char)*p))
        p++;
    return p;
}

/* Reads the value at p: 1..TRACE_ID_MAX trace characters, the closing quote when
 * `quoted`. A longer run is rejected rather than cut, since a prefix of some other
 * identifier would point at the wrong trace. Returns the length, 0 if not a trace id. */
static size_t read_trace_value(const char *p, const char *end, int quoted, char out[TRACE_ID_MAX + 1])
{
    size_t n = 0;
    while (p + n < end && is_trace_char((unsigned char)p[n])) {
        if (++n > TRACE_ID_MAX)
            return 0;
    }
    if (n == 0)
        return 0;
    if (quoted && (p + n >= end || p[n] != '"'))
        return 0;
    /* lymph prints None when no trace is set; access logs print "-". An id needs at least
     * one letter or digit. */
    if (n == 4 && memcmp(p, "None", 4) == 0)
        return 0;
    size_t alnum = 0;
    for (size_t i = 0; i < n; i++)
        alnum += isalnum((unsigned char)p[i]) != 0;
    if (alnum == 0)
        return 0;
    memcpy(out, p, n);
    out[n] = '\0';
    return n;
}

size_t logparse_trace_id(const char *text, size_t len, char out[TRACE_ID_MAX + 1])
{
    static const char key[] = "trace_id";
    const size_t key_len = sizeof key - 1;
    const char *end = text + len;
    const char *p = text;

    out[0] = '\0';
    while ((size_t)(end - p) > key_len) {
        /* Found from its '_' (memchr is far cheaper than memmem on a short line, and most
         * lines hold few underscores): "trace" must end right before it, "id" follow it. */
        const char *under = memchr(p + 5, '_', (size_t)(end - p) - 5);
        if (!under || (size_t)(end - under) < 3)
            break;
        const char *hit = under - 5;
        p = hit + 1; /* where the next search starts if this occurrence is not valid */
        if (memcmp(hit, key, key_len) != 0)
            continue;
        if (hit > text && is_word((unsigned char)hit[-1]))
            continue; /* part of a longer name, e.g. xtrace_id */

        const char *q = hit + key_len;
        if (q >= end)
            break;
        int quoted;
        if (*q == '"') {
            /* JSON: "trace_id" <ws> : <ws> "V" */
            if (hit == text || hit[-1] != '"')
                continue;
            q = skip_spaces(q + 1, end);
            if (q >= end || *q != ':')
                continue;
            q = skip_spaces(q + 1, end);
            if (q >= end || *q != '"')
                continue;
            q++;
            quoted = 1;
        } else if (*q == '=') {
            q++;
            quoted = q < end && *q == '"';
            q += quoted;
        } else if (*q == ':') {
            q = skip_spaces(q + 1, end);
            quoted = q < end && *q == '"';
            q += quoted;
        } else {
            continue; /* trace_ids, trace_id_x, ... */
        }
        size_t n = read_trace_value(q, end, quoted, out);
        if (n > 0)
            return n;
    }
    return 0;
}

/* ---- level ------------------------------------------------------------------------- */

/* The level token may start only this far into a plain line: beyond it, an upper-case
 * word is much more likely to be part of the message than the line's level. */
#define LEVEL_TOKEN_WINDOW 40

struct level_word {
    const char *name; /* lower case */
    unsigned char len;
    unsigned char level;
};

static const struct level_word level_words[] = {
    {"debug", 5, LOG_LEVEL_DEBUG},
    {"trace", 5, LOG_LEVEL_DEBUG},
    {"info", 4, LOG_LEVEL_INFO},
    {"notice", 6, LOG_LEVEL_INFO},
    {"warn", 4, LOG_LEVEL_WARNING},
    {"warning", 7, LOG_LEVEL_WARNING},
    {"err", 3, LOG_LEVEL_ERROR},
    {"error", 5, LOG_LEVEL_ERROR},
    {"fatal", 5, LOG_LEVEL_CRITICAL},
    {"crit", 4, LOG_LEVEL_CRITICAL},
    {"critical", 8, LOG_LEVEL_CRITICAL},
};

#define LEVEL_WORD_MAX 8

static inline int is_alpha(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline unsigned char to_lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + ('a' - 'A')) : c;
}

/* The level named by the whole letter run at p, or NONE. `upper_only` rejects any
 * lower-case letter. *word_len gets the run's length so callers can check what follows. */
static enum log_level match_level_word(const char *p, const char *end, int upper_only, size_t *word_len)
{
    char lower[LEVEL_WORD_MAX];
    size_t n = 0;
    while (p + n < end && is_alpha((unsigned char)p[n])) {
        unsigned char c = (unsigned char)p[n];
        if (n == LEVEL_WORD_MAX || (upper_only && c >= 'a')) {
            *word_len = n;
            return LOG_LEVEL_NONE;
        }
        lower[n++] = (char)to_lower(c);
    }
    *word_len = n;
    for (size_t i = 0; i < sizeof level_words / sizeof level_words[0]; i++) {
        if (level_words[i].len == n && memcmp(level_words[i].name, lower, n) == 0)
            return (enum log_level)level_words[i].level;
    }
    return LOG_LEVEL_NONE;
}

/* Keys that carry the level in JSON and logfmt lines, matched case-insensitively. */
static const char *const level_keys[] = {"level", "lvl", "severity", "levelname"};

/* Length of the level key that the bytes at p spell exactly (followed by a non-word
 * byte), or 0. */
static size_t match_level_key(const char *p, const char *end)
{
    /* Every key starts with l or s: most quotes and '='s on a line are rejected here. */
    if (p >= end || (to_lower((unsigned char)*p) != 'l' && to_lower((unsigned char)*p) != 's'))
        return 0;
    size_t n = 0;
    while (p + n < end && is_word((unsigned char)p[n]) && n < 10)
        n++;
    if (p + n < end && is_word((unsigned char)p[n]))
        return 0;
    for (size_t i = 0; i < sizeof level_keys / sizeof level_keys[0]; i++) {
        size_t k = strlen(level_keys[i]);
        if (k != n)
            continue;
        size_t j = 0;
        while (j < k && to_lower((unsigned char)p[j]) == (unsigned char)level_keys[i][j])
            j++;
        if (j == k)
            return k;
    }
    return 0;
}

/* A match of one form: where it starts, so the earliest form on the line wins. */
struct level_hit {
    size_t pos;
    enum log_level level;
};

/* JSON: "level" <ws> : <ws> "info", searched only before `limit`. */
static void find_json_level(const char *text, const char *end, struct level_hit *best)
{
    const char *limit = text + best->pos;
    const char *p = text;
    while (p < limit) {
        const char *quote = memchr(p, '"', (size_t)(limit - p));
        if (!quote)
            return;
        p = quote + 1;
        size_t k = match_level_key(p, end);
        if (k == 0 || p + k >= end || p[k] != '"')
            continue;
        const char *q = skip_spaces(p + k + 1, end);
        if (q >= end || *q != ':')
            continue;
        q = skip_spaces(q + 1, end);
        if (q >= end || *q != '"')
            continue;
        size_t wl;
        enum log_level level = match_level_word(q + 1, end, 0, &wl);
        if (level != LOG_LEVEL_NONE && q + 1 + wl < end && q[1 + wl] == '"') {
            best->pos = (size_t)(quote - text);
            best->level = level;
            return;
        }
    }
}

/* logfmt: level=info or level="info", the key at a word boundary. Found from the '=',
 * which is rarer than the key's letters. */
static void find_logfmt_level(const char *text, const char *end, struct level_hit *best)
{
    const char *limit = text + best->pos;
    const char *p = text;
    while (p < limit) {
        /* A key that starts before the limit ends at most 9 bytes later. */
        size_t span = (size_t)(end - p) < (size_t)(limit - p) + 10 ? (size_t)(end - p) : (size_t)(limit - p) + 10;
        const char *eq = memchr(p, '=', span);
        if (!eq)
            return;
        p = eq + 1;
        /* Walk back over the key; the longest key is 9 letters. */
        const char *k = eq;
        while (k > text && eq - k < 10 && is_word((unsigned char)k[-1]))
            k--;
        if (k >= limit || k == eq || (k > text && is_word((unsigned char)k[-1])))
            continue;
        if (match_level_key(k, end) != (size_t)(eq - k))
            continue;
        const char *v = eq + 1;
        int quoted = v < end && *v == '"';
        v += quoted;
        size_t wl;
        enum log_level level = match_level_word(v, end, 0, &wl);
        if (level == LOG_LEVEL_NONE)
            continue;
        const char *after = v + wl;
        if (quoted ? (after >= end || *after != '"') : (after < end && is_word((unsigned char)*after)))
            continue;
        best->pos = (size_t)(k - text);
        best->level = level;
        return;
    }
}

/* [INFO], [warning], lymph's "[WARNING]". Brackets make the word unambiguous, so any case. */
static void find_bracket_level(const char *text, const char *end, struct level_hit *best)
{
    const char *limit = text + best->pos;
    const char *p = text;
    while (p < limit) {
        const char *br = memchr(p, '[', (size_t)(limit - p));
        if (!br)
            return;
        p = br + 1;
        size_t wl;
        enum log_level level = match_level_word(p, end, 0, &wl);
        if (level != LOG_LEVEL_NONE && p + wl < end && p[wl] == ']') {
            best->pos = (size_t)(br - text);
            best->level = level;
            return;
        }
    }
}

/* Bit 7 of each byte of the result is set where the 8 bytes at p hold an upper-case ASCII
 * letter, exactly (no false hits): a few word operations instead of 8 compares. */
static inline uint64_t upper_case_bytes(const unsigned char *p)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t x;
    memcpy(&x, p, sizeof x);
    uint64_t low7 = x & ~high;              /* no byte carries into the next below */
    uint64_t at_least_a = low7 + ones * (0x80 - 'A');
    uint64_t above_z = low7 + ones * (0x80 - 'Z' - 1);
    return at_least_a & ~above_z & ~x & high; /* ~x: bytes >= 0x80 are not letters */
}

/* Index of the lowest byte flagged in a mask of upper_case_bytes, in memory order. */
static inline unsigned first_flagged_byte(uint64_t mask)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return (unsigned)__builtin_ctzll(mask) / 8;
#else
    return (unsigned)__builtin_clzll(mask) / 8;
#endif
}

static inline uint64_t clear_flagged_byte(uint64_t mask, unsigned byte)
{
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return mask & ~(0x80ull << (8 * byte));
#else
    return mask & ~(0x80ull << (8 * (7 - byte)));
#endif
}

/* Whether the upper-case letter at i starts a level token; if so it is the best hit. */
static int token_level_at(const char *text, const char *end, size_t i, struct level_hit *best)
{
    /* A token starts the line or follows a space; a letter inside a run never does. */
    if (i > 0 && !is_space((unsigned char)text[i - 1]))
        return 0;
    size_t wl;
    enum log_level level = match_level_word(text + i, end, 1, &wl);
    const char *after = text + i + wl;
    if (level == LOG_LEVEL_NONE || !(after == end || is_space((unsigned char)*after) || *after == ':'))
        return 0;
    best->pos = i;
    best->level = level;
    return 1;
}

/* A standalone upper-case level word near the start: "12:00:00 ERROR boom", and python
 * logging's default "WARNING:root:msg". Upper case only, so prose ("an error occurred")
 * is not taken for a level. Runs on every plain line, so it visits only the upper-case
 * letters of the window, found a block of bytes at a time; most lines have none or few. */
static void find_token_level(const char *text, const char *end, struct level_hit *best)
{
    size_t window = (size_t)(end - text) < LEVEL_TOKEN_WINDOW ? (size_t)(end - text) : LEVEL_TOKEN_WINDOW;
#ifdef __SSE2__
    /* Sixteen bytes per step; most windows hold no upper-case letter at all. */
    const __m128i before_a = _mm_set1_epi8('A' - 1), after_z = _mm_set1_epi8('Z' + 1);
    size_t len = (size_t)(end - text);
    for (size_t base = 0; base < window; base += 16) {
        const unsigned char *p = (const unsigned char *)text + base;
        __m128i v;
        if (len - base >= 16) { /* the line goes on: load past the window, ignore those bytes */
            v = _mm_loadu_si128((const __m128i *)p);
        } else {
            unsigned char block[16] = {0};
            memcpy(block, p, window - base);
            v = _mm_loadu_si128((const __m128i *)block);
        }
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpgt_epi8(v, before_a),
                                                                 _mm_cmplt_epi8(v, after_z)));
        if (window - base < 16)
            mask &= (1u << (window - base)) - 1;
        for (; mask; mask &= mask - 1) {
            size_t i = base + (size_t)__builtin_ctz(mask);
            if (token_level_at(text, end, i, best))
                return;
        }
    }
#else
    for (size_t base = 0; base < window; base += 8) {
        unsigned char word[8] = {0};
        const unsigned char *p = (const unsigned char *)text + base;
        if (window - base >= 8)
            memcpy(word, p, 8);
        else
            memcpy(word, p, window - base);
        for (uint64_t mask = upper_case_bytes(word); mask;) {
            unsigned b = first_flagged_byte(mask);
            mask = clear_flagged_byte(mask, b);
            if (token_level_at(text, end, base + b, best))
                return;
        }
    }
#endif
}

/* Which of the bytes the bracket, logfmt and JSON forms start from occur on the line, so that
 * a plain line (most of a burst) costs one pass instead of three searches. */
enum { HAS_BRACKET = 1, HAS_EQUALS = 2, HAS_QUOTE = 4 };

static unsigned level_marks_present(const char *text, size_t len)
{
#ifdef __SSE2__
    const __m128i bracket = _mm_set1_epi8('['), equals = _mm_set1_epi8('='), quote = _mm_set1_epi8('"');
    __m128i b = _mm_setzero_si128(), e = b, q = b;
    size_t i = 0;
    for (; len - i >= 16; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(text + i));
        b = _mm_or_si128(b, _mm_cmpeq_epi8(v, bracket));
        e = _mm_or_si128(e, _mm_cmpeq_epi8(v, equals));
        q = _mm_or_si128(q, _mm_cmpeq_epi8(v, quote));
    }
    unsigned has = (_mm_movemask_epi8(b) ? HAS_BRACKET : 0) | (_mm_movemask_epi8(e) ? HAS_EQUALS : 0) |
                   (_mm_movemask_epi8(q) ? HAS_QUOTE : 0);
    for (; i < len; i++)
        has |= text[i] == '[' ? HAS_BRACKET : text[i] == '=' ? HAS_EQUALS : text[i] == '"' ? HAS_QUOTE : 0;
    return has;
#else
    (void)text;
    (void)len;
    return HAS_BRACKET | HAS_EQUALS | HAS_QUOTE;
#endif
}

enum log_level logparse_level(const char *text, size_t len)
{
    const char *end = text + len;
    struct level_hit best = {SIZE_MAX, LOG_LEVEL_NONE};

    /* A JSON object line is decided by its keys alone: its message may well contain
     * "[ERROR]" or "level=debug" before the level key. */
    const char *first = skip_spaces(text, end);
    if (first < end && *first == '{') {
        best.pos = len;
        find_json_level(text, end, &best);
        if (best.level != LOG_LEVEL_NONE)
            return best.level;
        best.pos = SIZE_MAX;
    }

    /* Otherwise the earliest form wins; each search stops at the best match so far. */
    find_token_level(text, end, &best);
    if (best.pos == SIZE_MAX)
        best.pos = len;
    /* The searches below look no further than the best match (a logfmt key that starts
     * before it ends at most 10 bytes later), so neither does this. */
    unsigned has = level_marks_present(text, len - best.pos > 10 ? best.pos + 10 : len);
    if (has & HAS_BRACKET)
        find_bracket_level(text, end, &best);
    if (has & HAS_EQUALS)
        find_logfmt_level(text, end, &best);
    if (has & HAS_QUOTE)
        find_json_level(text, end, &best);
    return best.level;
}

const char *logparse_level_name(enum log_level level)
{
    switch (level) {
    case LOG_LEVEL_DEBUG: return "debug";
    case LOG_LEVEL_INFO: return "info";
    case LOG_LEVEL_WARNING: return "warning";
    case LOG_LEVEL_ERROR: return "error";
    case LOG_LEVEL_CRITICAL: return "critical";
    case LOG_LEVEL_NONE: break;
    }
    return "";
}

int logparse_level_from_name(const char *name)
{
    if (!name)
        return -1;
    if (name[0] == '\0')
        return LOG_LEVEL_NONE; /* so that from_name(level_name(NONE)) round-trips */
    size_t len = strlen(name);
    size_t wl;
    enum log_level level = match_level_word(name, name + len, 0, &wl);
    return level != LOG_LEVEL_NONE && wl == len ? (int)level : -1;
}
