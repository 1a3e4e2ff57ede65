/* fuzz_logparse: the trace id and level extraction of common/logparse.c on one line of
 * arbitrary bytes (copied into an exact-size buffer, so ASan sees any read past the end), and
 * the two renderings of that line in common/logformat.c. Checks: the trace id is
 * [A-Za-z0-9_-]{1,64} and occurs in the line, the level is in range and round-trips by
 * name, the JSON rendering parses and gives the text back, the human one has no control bytes. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/logformat.h"
#include "common/logparse.h"
#include "common/strbuf.h"
#include "tests/fuzz/fuzz_util.h"

static int is_trace_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size ? size : 1);
    if (!text)
        abort();
    memcpy(text, data, size);

    char id[TRACE_ID_MAX + 1];
    memset(id, 'X', sizeof id);
    size_t n = logparse_trace_id(text, size, id);
    if (n == 0) {
        FUZZ_CHECK(id[0] == '\0', "no trace id, but out is not empty");
    } else {
        FUZZ_CHECK(n <= TRACE_ID_MAX && strlen(id) == n, "trace id length %zu, strlen %zu", n, strlen(id));
        for (size_t i = 0; i < n; i++)
            FUZZ_CHECK(is_trace_char((unsigned char)id[i]), "trace id byte 0x%02x", (unsigned char)id[i]);
        FUZZ_CHECK(memmem(text, size, id, n) != NULL, "trace id '%s' is not in the line", id);
    }

    enum log_level level = logparse_level(text, size);
    FUZZ_CHECK(level >= LOG_LEVEL_NONE && level <= LOG_LEVEL_CRITICAL, "level %d", (int)level);
    const char *name = logparse_level_name(level);
    FUZZ_CHECK(name != NULL, "no name for level %d", (int)level);
    if (level != LOG_LEVEL_NONE)
        FUZZ_CHECK(logparse_level_from_name(name) == (int)level, "level name '%s' does not round-trip", name);

    /* The input itself as a level name (what `tail --level` and the wire accept). */
    char word[16];
    size_t wl = size < sizeof word - 1 ? size : sizeof word - 1;
    memcpy(word, data, wl);
    word[wl] = '\0';
    int from = logparse_level_from_name(word);
    FUZZ_CHECK(from == -1 || (from > LOG_LEVEL_NONE && from <= LOG_LEVEL_CRITICAL) || (from == 0 && !word[0]),
               "level_from_name %d", from);

    struct log_line line = {
        .seq = 1 + size,
        .wall_ns = (int64_t)size * 1000003,
        .service = "Fuzz",
        .instance = (int)(size % 3) - 1,
        .pid = 4242,
        .stream = (enum log_stream)(size % 3),
        .level = level,
        .flags = (unsigned)(size & 3),
        .text = text,
        .len = size,
    };
    memcpy(line.trace_id, id, n + 1);

    struct strbuf sb;
    strbuf_init(&sb);
    struct logformat_cache clock, local_clock;
    logformat_cache_init(&clock);
    logformat_cache_init(&local_clock);
    logformat_json(&sb, &line, &clock);
    FUZZ_CHECK(sb.len > 0 && sb.data[sb.len - 1] == '\n', "JSON line does not end in a newline");

    /* The next line, from a source named by the input: what the shared cache copies must be
     * what a fresh cache formats. */
    char service[80];
    size_t sl = size < sizeof service - 1 ? size : sizeof service - 1;
    memcpy(service, data, sl);
    service[sl] = '\0';
    for (int round = 0; round < 2; round++) {
        struct log_line next = line;
        next.seq = line.seq + 1 + (uint64_t)round;
        next.service = round ? service : line.service;
        struct strbuf cached, fresh;
        strbuf_init(&cached);
        strbuf_init(&fresh);
        struct logformat_cache none;
        logformat_cache_init(&none);
        logformat_json(&cached, &next, &clock);
        logformat_json(&fresh, &next, &none);
        FUZZ_CHECK(cached.len == fresh.len && memcmp(cached.data, fresh.data, fresh.len) == 0,
                   "a cached JSON line differs from a fresh one (round %d)", round);
        strbuf_free(&cached);
        strbuf_free(&fresh);
    }
    json_error_t jerr;
    json_t *obj = json_loadb(sb.data, sb.len - 1, JSON_ALLOW_NUL, &jerr);
    FUZZ_CHECK(obj != NULL, "log file line is not JSON: %s", jerr.text);
    json_t *jt = json_object_get(obj, "text");
    FUZZ_CHECK(json_is_string(jt), "no text in the JSON line");
    json_t *utf8 = json_stringn(text, size); /* NULL when the line is not valid UTF-8 */
    if (utf8) {
        FUZZ_CHECK(json_string_length(jt) == size && memcmp(json_string_value(jt), text, size) == 0,
                   "valid UTF-8 text did not survive the JSON line");
        json_decref(utf8);
    }
    if (n) {
        json_t *jid = json_object_get(obj, "trace_id");
        FUZZ_CHECK(json_is_string(jid) && strcmp(json_string_value(jid), id) == 0, "trace_id lost in JSON");
    }
    json_decref(obj);

    for (int color = 0; color <= 1; color++) {
        strbuf_reset(&sb);
        logformat_human(&sb, &line, &local_clock, color, 12);
        FUZZ_CHECK(sb.len > 0 && sb.data[sb.len - 1] == '\n', "human line does not end in a newline");
        if (!color) {
            for (size_t i = 0; i + 1 < sb.len; i++) {
                unsigned char c = (unsigned char)sb.data[i];
                FUZZ_CHECK(c == '\t' || (c >= 0x20 && c != 0x7f), "control byte 0x%02x at %zu of the human line",
                           c, i);
            }
        }
    }
    strbuf_free(&sb);
    free(text);
    return 0;
}
