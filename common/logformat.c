/* logformat: runs once per line per consumer (1.6M lines in the burst benchmark), so it
 * appends with memcpy and hand-rolled integers, and formats time only once per second. */
#include "common/logformat.h"

#include <string.h>
#include <time.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

static const int service_palette[] = {36, 33, 32, 35, 34, 96, 93, 92, 95, 94};

const char *log_stream_name(enum log_stream stream)
{
    return stream == LOG_STREAM_STDOUT ? "stdout" : stream == LOG_STREAM_STDERR ? "stderr" : "node";
}

void logformat_cache_init(struct logformat_cache *cache)
{
    memset(cache, 0, sizeof *cache);
    cache->second = -1;
}

int logformat_service_color(const char *service)
{
    unsigned h = 2166136261u;
    for (const unsigned char *s = (const unsigned char *)service; *s; s++)
        h = (h ^ *s) * 16777619u;
    return service_palette[h % (sizeof service_palette / sizeof service_palette[0])];
}

/* Whether any of the 8 bytes at p is a control byte (below 0x20, or DEL). Exact as a yes/no
 * (the borrow of a flagged byte can only flag bytes above it), which is all the scan needs. */
static inline int word_has_control(const char *p)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    uint64_t x;
    memcpy(&x, p, sizeof x);
    uint64_t below_space = (x - ones * 0x20) & ~x & high;
    uint64_t y = x ^ (ones * 0x7f);
    uint64_t del = (y - ones) & ~y & high;
    return (below_space | del) != 0;
}

/* The index of the first control byte at or after i, or one near the end from where the
 * caller goes on byte by byte: sixteen bytes per step with SSE2, eight without. */
static inline size_t skip_clean(const char *text, size_t i, size_t len)
{
#ifdef __SSE2__
    const __m128i below_space = _mm_set1_epi8(0x1f), del = _mm_set1_epi8(0x7f);
    while (len - i >= 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(text + i));
        /* Unsigned v <= 0x1f is min(v, 0x1f) == v; bytes >= 0x80 (UTF-8) stay clean. */
        __m128i control = _mm_or_si128(_mm_cmpeq_epi8(_mm_min_epu8(v, below_space), v), _mm_cmpeq_epi8(v, del));
        unsigned mask = (unsigned)_mm_movemask_epi8(control);
        if (mask)
            return i + (size_t)__builtin_ctz(mask);
        i += 16;
    }
#endif
    while (len - i >= 8 && !word_has_control(text + i))
        i += 8;
    return i;
}

int logformat_clean_text(struct strbuf *sb, const char *text, size_t len, int keep_sgr)
{
    int kept_sgr = 0;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        /* Runs on every printed line: skip clean text eight bytes at a time. */
        i = skip_clean(text, i, len);
        if (i >= len)
            break;
        unsigned char c = (unsigned char)text[i];
        if (c >= 0x20 && c != 0x7f)
            continue;
        strbuf_append(sb, text + run, i - run);
        if (c == '\t') {
            strbuf_putc(sb, '\t');
        } else if (c == 0x1b && i + 1 < len && text[i + 1] == '[') {
            /* CSI: parameters, intermediates, one final byte in 0x40..0x7e */
            size_t j = i + 2;
            while (j < len && (unsigned char)text[j] >= 0x20 && (unsigned char)text[j] <= 0x3f)
                j++;
            while (j < len && (unsigned char)text[j] >= 0x20 && (unsigned char)text[j] <= 0x2f)
                j++;
            if (j < len && text[j] == 'm' && keep_sgr) {
                strbuf_append(sb, text + i, j + 1 - i);
                kept_sgr = 1;
            }
            i = j < len ? j : len - 1;
        } else if (c == 0x1b && i + 1 < len && text[i + 1] == ']') {
            /* OSC: up to BEL or ST */
            size_t j = i + 2;
            while (j < len && text[j] != 0x07 && !(text[j] == 0x1b && j + 1 < len && text[j + 1] == '\\'))
                j++;
            i = j < len && text[j] == 0x1b ? j + 1 : j;
            if (i >= len)
                i = len - 1;
        } else if (c == 0x1b && i + 1 < len) {
            i++; /* two-byte escape */
        }
        run = i + 1;
    }
    if (run < len)
        strbuf_append(sb, text + run, len - run);
    return kept_sgr;
}

/* Writes a string literal into room made beforehand. */
#define PUT_LITERAL(p, lit) ((p) = (char *)memcpy((p), (lit), sizeof(lit) - 1) + sizeof(lit) - 1)

/* Formats the source-dependent piece of a line (color and width as the formatter was asked). */
typedef void (*fragment_format_fn)(struct strbuf *sb, const struct log_line *line, int color, size_t width);

/* Appends the piece `format` makes for the line: copied from `f` when the line comes from the
 * same source as the one before (in a burst, nearly every line), else formatted and kept. */
static void append_fragment(struct strbuf *sb, struct logformat_fragment *f, const struct log_line *line,
                            int color, size_t width, fragment_format_fn format)
{
    if (f->len && f->instance == line->instance && f->pid == line->pid && f->stream == line->stream &&
        f->color == color && f->width == width && strcmp(f->service, line->service) == 0) {
        strbuf_append(sb, f->text, f->len);
        return;
    }
    size_t start = sb->len;
    format(sb, line, color, width);
    size_t service_len = strlen(line->service), len = sb->len - start;
    f->len = 0;
    if (service_len < sizeof f->service && len <= sizeof f->text) {
        memcpy(f->service, line->service, service_len + 1);
        f->instance = line->instance;
        f->pid = line->pid;
        f->stream = line->stream;
        f->color = color;
        f->width = width;
        memcpy(f->text, sb->data + start, len);
        f->len = len;
    }
}

/* Formats the cache's second (local time for people, UTC for the log file) when it changed. */
static void cache_second(struct logformat_cache *cache, int64_t wall_ns, int utc)
{
    int64_t second = wall_ns / 1000000000;
    if (second == cache->second)
        return;
    time_t t = (time_t)second;
    struct tm tm;
    if (utc)
        gmtime_r(&t, &tm);
    else
        localtime_r(&t, &tm);
    strftime(cache->text, sizeof cache->text, utc ? "%Y-%m-%dT%H:%M:%S." : "%H:%M:%S", &tm);
    cache->second = second;
}

/* Writes the time of wall_ns (the cached second, then `digits` digits of the fraction after
 * `sep`) at p, from the cache when the line before had the same time. Returns the end. */
static char *put_stamp(char *p, struct logformat_cache *cache, int64_t wall_ns, int utc, const char *sep,
                       unsigned digits)
{
    if (cache->stamp_len == 0 || cache->stamp_ns != wall_ns) {
        cache_second(cache, wall_ns, utc);
        size_t n = strlen(cache->text), s = strlen(sep);
        memcpy(cache->stamp, cache->text, n);
        memcpy(cache->stamp + n, sep, s);
        n += s;
        long long scale = 1;
        for (unsigned i = digits; i < 9; i++)
            scale *= 10;
        unsigned long long frac = (unsigned long long)(wall_ns % 1000000000 / scale);
        for (unsigned i = digits; i > 0; i--, frac /= 10)
            cache->stamp[n + i - 1] = (char)('0' + frac % 10);
        cache->stamp_len = n + digits;
        cache->stamp_ns = wall_ns;
    }
    memcpy(p, cache->stamp, cache->stamp_len);
    return p + cache->stamp_len;
}

static void append_padded_name(struct strbuf *sb, const struct log_line *line, size_t width)
{
    size_t before = sb->len;
    strbuf_puts(sb, line->service);
    if (line->instance >= 0) {
        strbuf_putc(sb, '.');
        strbuf_append_u64(sb, (unsigned long long)line->instance);
    }
    static const char spaces[] = "                                                                ";
    size_t used = sb->len - before;
    while (used < width) {
        size_t pad = width - used < sizeof spaces - 1 ? width - used : sizeof spaces - 1;
        strbuf_append(sb, spaces, pad);
        used += pad;
    }
}

/* The name column with what surrounds it: "\033[0m \033[36mGreeting.1  |\033[0m " after the
 * time, or " Greeting.1  | ". */
static void format_name_column(struct strbuf *sb, const struct log_line *line, int color, size_t width)
{
    if (color) {
        strbuf_puts(sb, "\033[0m \033[");
        strbuf_append_u64(sb, (unsigned long long)(line->stream == LOG_STREAM_NODE
                                                       ? 1 : logformat_service_color(line->service)));
        strbuf_putc(sb, 'm');
        append_padded_name(sb, line, width);
        strbuf_puts(sb, " |\033[0m ");
    } else {
        strbuf_putc(sb, ' ');
        append_padded_name(sb, line, width);
        strbuf_puts(sb, " | ");
    }
}

void logformat_human(struct strbuf *sb, const struct log_line *line, struct logformat_cache *cache,
                     int color, size_t name_width)
{
    int node_warning = line->stream == LOG_STREAM_NODE && line->level >= LOG_LEVEL_WARNING;
    char *p = strbuf_room(sb, 4 + sizeof cache->stamp);
    if (color)
        PUT_LITERAL(p, "\033[2m");
    strbuf_commit(sb, put_stamp(p, cache, line->wall_ns, 0, ".", 3));
    append_fragment(sb, &cache->source, line, color, name_width, format_name_column);
    if (color && node_warning)
        strbuf_puts(sb, line->level >= LOG_LEVEL_ERROR ? "\033[31m" : "\033[33m");
    int kept = logformat_clean_text(sb, line->text, line->len, color);
    if (color && (kept || node_warning))
        strbuf_puts(sb, "\033[0m");
    strbuf_putc(sb, '\n');
}

/* Field writers for logformat_json: they write into room made beforehand. */

static char *put_i64(char *p, long long value)
{
    if (value < 0) {
        *p++ = '-';
        return strbuf_put_u64(p, 0ull - (unsigned long long)value);
    }
    return strbuf_put_u64(p, (unsigned long long)value);
}

static char *put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return p + n;
}

/* Every field but the service and the text is bounded: the clock text, 6 digits, three
 * integers, the stream and level names, the trace id and the flags fit in this. */
#define JSON_FIXED_ROOM (256 + TRACE_ID_MAX)

/* Writes the seq's digits: the cached ones, counted up by one in place for the next line. */
static char *put_seq(char *p, uint64_t seq, struct logformat_cache *cache)
{
    if (cache->seq != 0 && seq == cache->seq + 1) {
        size_t i = cache->seq_len;
        while (i > 0 && cache->seq_text[i - 1] == '9')
            cache->seq_text[--i] = '0';
        if (i > 0) {
            cache->seq_text[i - 1]++;
        } else { /* 999 -> 1000 */
            memmove(cache->seq_text + 1, cache->seq_text, cache->seq_len);
            cache->seq_text[0] = '1';
            cache->seq_len++;
        }
    } else {
        cache->seq_len = (size_t)(strbuf_put_u64(cache->seq_text, seq) - cache->seq_text);
    }
    cache->seq = seq;
    memcpy(p, cache->seq_text, cache->seq_len);
    return p + cache->seq_len;
}

/* Appends ,"service":"S","instance":N,"pid":P,"stream":"X" (colour and width do not apply). */
static void format_source(struct strbuf *sb, const struct log_line *line, int color, size_t width)
{
    (void)color;
    (void)width;
    char *p = strbuf_room(sb, JSON_FIXED_ROOM);
    PUT_LITERAL(p, ",\"service\":\"");
    strbuf_commit(sb, p);
    strbuf_append_json_string(sb, line->service, strlen(line->service));
    p = strbuf_room(sb, JSON_FIXED_ROOM);
    PUT_LITERAL(p, "\",\"instance\":");
    p = put_i64(p, line->instance);
    PUT_LITERAL(p, ",\"pid\":");
    p = put_i64(p, line->pid);
    PUT_LITERAL(p, ",\"stream\":\"");
    p = put_str(p, log_stream_name(line->stream));
    *p++ = '"';
    strbuf_commit(sb, p);
}

/* Runs for every line of every burst on the log writer thread, so it writes the fixed
 * fields straight into the buffer and copies what the line before already formatted. */
void logformat_json(struct strbuf *sb, const struct log_line *line, struct logformat_cache *cache)
{
    char *p = strbuf_room(sb, JSON_FIXED_ROOM);
    PUT_LITERAL(p, "{\"time\":\"");
    p = put_stamp(p, cache, line->wall_ns, 1, "", 6);
    PUT_LITERAL(p, "Z\",\"seq\":");
    p = put_seq(p, line->seq, cache);
    strbuf_commit(sb, p);
    append_fragment(sb, &cache->source, line, 0, 0, format_source);
    p = strbuf_room(sb, JSON_FIXED_ROOM);
    if (line->level != LOG_LEVEL_NONE) {
        PUT_LITERAL(p, ",\"level\":\"");
        p = put_str(p, logparse_level_name(line->level));
        *p++ = '"';
    }
    if (line->trace_id[0]) {
        /* trace ids are [A-Za-z0-9_-]: nothing to escape */
        PUT_LITERAL(p, ",\"trace_id\":\"");
        p = put_str(p, line->trace_id);
        *p++ = '"';
    }
    if (line->flags & LOG_LINE_SPLIT)
        PUT_LITERAL(p, ",\"split\":true");
    if (line->flags & LOG_LINE_UNTERMINATED)
        PUT_LITERAL(p, ",\"unterminated\":true");
    PUT_LITERAL(p, ",\"text\":\"");
    strbuf_commit(sb, p);
    strbuf_append_json_string(sb, line->text, line->len);
    p = strbuf_room(sb, 3);
    PUT_LITERAL(p, "\"}\n");
    strbuf_commit(sb, p);
}
