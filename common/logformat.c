/* logformat: runs once per line per consumer (1.6M lines in the burst benchmark), so it
 * appends with memcpy and hand-rolled integers, and formats time only once per second. */
#include "common/logformat.h"

#include <string.h>
#include <time.h>

static const int service_palette[] = {36, 33, 32, 35, 34, 96, 93, 92, 95, 94};

const char *log_stream_name(enum log_stream stream)
{
    return stream == LOG_STREAM_STDOUT ? "stdout" : stream == LOG_STREAM_STDERR ? "stderr" : "node";
}

void logformat_clock_init(struct logformat_clock *clock)
{
    clock->second = -1;
    clock->text[0] = '\0';
}

int logformat_service_color(const char *service)
{
    unsigned h = 2166136261u;
    for (const unsigned char *s = (const unsigned char *)service; *s; s++)
        h = (h ^ *s) * 16777619u;
    return service_palette[h % (sizeof service_palette / sizeof service_palette[0])];
}

int logformat_clean_text(struct strbuf *sb, const char *text, size_t len, int keep_sgr)
{
    int kept_sgr = 0;
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
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

void logformat_human(struct strbuf *sb, const struct log_line *line, struct logformat_clock *clock,
                     int color, size_t name_width)
{
    int64_t second = line->wall_ns / 1000000000;
    if (second != clock->second) {
        time_t t = (time_t)second;
        struct tm tm;
        localtime_r(&t, &tm);
        strftime(clock->text, sizeof clock->text, "%H:%M:%S", &tm);
        clock->second = second;
    }
    unsigned ms = (unsigned)((line->wall_ns % 1000000000) / 1000000);
    int node_warning = line->stream == LOG_STREAM_NODE && line->level >= LOG_LEVEL_WARNING;
    if (color) {
        strbuf_puts(sb, "\033[2m");
        strbuf_puts(sb, clock->text);
        strbuf_putc(sb, '.');
        strbuf_append_padded(sb, ms, 3);
        strbuf_puts(sb, "\033[0m \033[");
        strbuf_append_u64(sb, (unsigned long long)(line->stream == LOG_STREAM_NODE
                                                       ? 1 : logformat_service_color(line->service)));
        strbuf_putc(sb, 'm');
        append_padded_name(sb, line, name_width);
        strbuf_puts(sb, " |\033[0m ");
        if (node_warning)
            strbuf_puts(sb, line->level >= LOG_LEVEL_ERROR ? "\033[31m" : "\033[33m");
    } else {
        strbuf_puts(sb, clock->text);
        strbuf_putc(sb, '.');
        strbuf_append_padded(sb, ms, 3);
        strbuf_putc(sb, ' ');
        append_padded_name(sb, line, name_width);
        strbuf_puts(sb, " | ");
    }
    int kept = logformat_clean_text(sb, line->text, line->len, color);
    if (color && (kept || node_warning))
        strbuf_puts(sb, "\033[0m");
    strbuf_putc(sb, '\n');
}

void logformat_json(struct strbuf *sb, const struct log_line *line, struct logformat_clock *clock)
{
    int64_t second = line->wall_ns / 1000000000;
    if (second != clock->second) {
        time_t t = (time_t)second;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(clock->text, sizeof clock->text, "%Y-%m-%dT%H:%M:%S.", &tm);
        clock->second = second;
    }
    strbuf_puts(sb, "{\"time\":\"");
    strbuf_puts(sb, clock->text);
    strbuf_append_padded(sb, (unsigned long long)((line->wall_ns % 1000000000) / 1000), 6);
    strbuf_puts(sb, "Z\",\"seq\":");
    strbuf_append_u64(sb, line->seq);
    strbuf_puts(sb, ",\"service\":\"");
    strbuf_append_json_string(sb, line->service, strlen(line->service));
    strbuf_puts(sb, "\",\"instance\":");
    strbuf_append_i64(sb, line->instance);
    strbuf_puts(sb, ",\"pid\":");
    strbuf_append_i64(sb, line->pid);
    strbuf_puts(sb, ",\"stream\":\"");
    strbuf_puts(sb, log_stream_name(line->stream));
    strbuf_putc(sb, '"');
    if (line->level != LOG_LEVEL_NONE) {
        strbuf_puts(sb, ",\"level\":\"");
        strbuf_puts(sb, logparse_level_name(line->level));
        strbuf_putc(sb, '"');
    }
    if (line->trace_id[0]) {
        /* trace ids are [A-Za-z0-9_-]: nothing to escape */
        strbuf_puts(sb, ",\"trace_id\":\"");
        strbuf_puts(sb, line->trace_id);
        strbuf_putc(sb, '"');
    }
    if (line->flags & LOG_LINE_SPLIT)
        strbuf_puts(sb, ",\"split\":true");
    if (line->flags & LOG_LINE_UNTERMINATED)
        strbuf_puts(sb, ",\"unterminated\":true");
    strbuf_puts(sb, ",\"text\":\"");
    strbuf_append_json_string(sb, line->text, line->len);
    strbuf_puts(sb, "\"}\n");
}
