/* fuzz_sdquote: export/sdquote.c, which writes config text into systemd unit files. Input: a
 * command (up to the first NUL). Checks, with a reader of systemd's quoting written here:
 * sdquote_word and sdquote_env give back exactly the text they were given, so does a line of
 * sdquote_envfile read as systemd reads an EnvironmentFile= (src/basic/env-file.c), and every
 * word sdquote_split_simple reads without a variable reads back as the shell's word. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/strbuf.h"
#include "export/sdquote.h"
#include "tests/fuzz/fuzz_util.h"

static int hex(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One systemd word as systemd reads it (quotes and C escapes, then %% and, with dollars,
 * $$): appended to out; returns 0, or -1 when it is not one well-formed word. */
static int FUZZ_NO_COVERAGE systemd_read(const char *w, int dollars, struct strbuf *out)
{
    struct strbuf raw;
    strbuf_init(&raw);
    int rc = 0;
    if (w[0] == '"') {
        const char *p = w + 1;
        for (; *p && *p != '"' && rc == 0; p++) {
            if (*p != '\\') {
                strbuf_putc(&raw, *p);
                continue;
            }
            p++;
            switch (*p) {
            case '\\': strbuf_putc(&raw, '\\'); break;
            case '"': strbuf_putc(&raw, '"'); break;
            case 'n': strbuf_putc(&raw, '\n'); break;
            case 't': strbuf_putc(&raw, '\t'); break;
            case 'r': strbuf_putc(&raw, '\r'); break;
            case 'x':
                if (hex(p[1]) < 0 || hex(p[2]) < 0) {
                    rc = -1;
                    break;
                }
                strbuf_putc(&raw, (char)(hex(p[1]) * 16 + hex(p[2])));
                p += 2;
                break;
            default: rc = -1;
            }
        }
        if (rc == 0 && (*p != '"' || p[1] != '\0'))
            rc = -1;
    } else {
        for (const char *p = w; *p && rc == 0; p++) {
            if (strchr(" \t\n\"'\\;", *p) || (unsigned char)*p < 0x20)
                rc = -1;
            strbuf_putc(&raw, *p);
        }
        if (w[0] == '\0')
            rc = -1;
    }
    const char *r = raw.len ? strbuf_cstr(&raw) : "";
    for (size_t i = 0; rc == 0 && i < raw.len; i++) {
        if (r[i] == '%' || (dollars && r[i] == '$')) {
            if (r[i + 1] != r[i]) {
                rc = -1;
                break;
            }
            i++;
        }
        strbuf_putc(out, r[i]);
    }
    strbuf_free(&raw);
    return rc;
}

/* One line NAME="..."\n of an environment file as systemd's parser reads it: the name, then
 * in double quotes \\ \" \` \$ unescaped, a backslash-newline dropped, any other backslash
 * kept; nothing may follow the closing quote but the newline. 0, or -1 when malformed. */
static int FUZZ_NO_COVERAGE envfile_read(const char *line, const char *name, struct strbuf *out)
{
    size_t n = strlen(name);
    if (strncmp(line, name, n) != 0 || line[n] != '=' || line[n + 1] != '"')
        return -1;
    const char *p = line + n + 2;
    for (; *p && *p != '"'; p++) {
        if (*p != '\\') {
            strbuf_putc(out, *p);
            continue;
        }
        p++;
        if (*p == '\0')
            return -1;
        if (strchr("\"\\`$", *p)) {
            strbuf_putc(out, *p);
        } else if (*p != '\n') {
            strbuf_putc(out, '\\');
            strbuf_putc(out, *p);
        }
    }
    return *p == '"' && strcmp(p, "\"\n") == 0 ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = strnlen((const char *)data, size);
    char *text = malloc(len + 1);
    if (!text)
        abort();
    memcpy(text, data, len);
    text[len] = '\0';

    struct strbuf q, back;
    strbuf_init(&q);
    strbuf_init(&back);
    sdquote_word(&q, text, 1);
    FUZZ_CHECK(systemd_read(strbuf_cstr(&q), 1, &back) == 0, "not one word: %s", strbuf_cstr(&q));
    FUZZ_CHECK(strcmp(back.len ? strbuf_cstr(&back) : "", text) == 0, "[%s] reads back as [%s]", text,
               strbuf_cstr(&back));

    strbuf_reset(&q);
    strbuf_reset(&back);
    FUZZ_CHECK(sdquote_env(&q, "X", text) == 0, "refused X");
    FUZZ_CHECK(systemd_read(strbuf_cstr(&q), 0, &back) == 0, "not one word: %s", strbuf_cstr(&q));
    FUZZ_CHECK(strncmp(strbuf_cstr(&back), "X=", 2) == 0 && strcmp(strbuf_cstr(&back) + 2, text) == 0,
               "X=[%s] reads back as [%s]", text, strbuf_cstr(&back));

    strbuf_reset(&q);
    strbuf_reset(&back);
    const char *why = NULL;
    int rc = sdquote_envfile(&q, "X", text, &why);
    FUZZ_CHECK(rc == 0 || (rc == -2 && why && q.len == 0), "sdquote_envfile: %d", rc);
    if (rc == 0) {
        FUZZ_CHECK(envfile_read(strbuf_cstr(&q), "X", &back) == 0, "not one line: %s", strbuf_cstr(&q));
        FUZZ_CHECK(strcmp(back.len ? strbuf_cstr(&back) : "", text) == 0, "X=[%s] reads back as [%s]", text,
                   strbuf_cstr(&back));
    }

    struct sdword *words;
    int n = sdquote_split_simple(text, &words);
    FUZZ_CHECK(n == -1 || n >= 1, "count %d", n);
    for (int i = 0; i < n; i++) {
        strbuf_reset(&back);
        const char *w = words[i].systemd;
        if (!words[i].literal) {
            FUZZ_CHECK(strchr(w, '$'), "a word with a variable lost it: %s", w);
            continue;
        }
        FUZZ_CHECK(systemd_read(w, 1, &back) == 0, "word %d not one systemd word: %s", i, w);
        FUZZ_CHECK(strcmp(back.len ? strbuf_cstr(&back) : "", words[i].literal) == 0,
                   "word %d [%s] reads back as [%s]", i, words[i].literal, strbuf_cstr(&back));
    }
    if (n > 0) {
        FUZZ_CHECK(words[0].literal && words[0].literal[0], "no program word");
        sdquote_words_free(words, n);
    }
    strbuf_free(&q);
    strbuf_free(&back);
    free(text);
    return 0;
}
