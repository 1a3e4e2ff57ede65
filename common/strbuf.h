/* strbuf: a growable byte buffer, the one way devnode builds text (JSON lines, tables).
 * Allocation failure aborts (common/xalloc): the node cannot do anything useful without memory. */
#ifndef DEVNODE_STRBUF_H
#define DEVNODE_STRBUF_H

#include <stddef.h>

struct strbuf {
    char *data;  /* NUL-terminated when len > 0 or after strbuf_cstr */
    size_t len;
    size_t cap;
};

void strbuf_init(struct strbuf *sb);
void strbuf_free(struct strbuf *sb);
void strbuf_reset(struct strbuf *sb);            /* len = 0, keeps the allocation */
void strbuf_append(struct strbuf *sb, const char *data, size_t len);
void strbuf_puts(struct strbuf *sb, const char *s);
void strbuf_putc(struct strbuf *sb, char c);
void strbuf_printf(struct strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *strbuf_cstr(struct strbuf *sb);
/* Decimal integers without printf: these run per field of every log line. */
void strbuf_append_u64(struct strbuf *sb, unsigned long long value);
void strbuf_append_i64(struct strbuf *sb, long long value);
/* `value` as exactly `width` digits, zero-padded (e.g. milliseconds: width 3). */
void strbuf_append_padded(struct strbuf *sb, unsigned long long value, unsigned width);      /* always NUL-terminated, "" when empty */

/* For writers that fill many small fields: strbuf_room makes room for `n` more bytes and
 * returns where they go; strbuf_commit sets the end to `end` (within that room). */
char *strbuf_room(struct strbuf *sb, size_t n);
void strbuf_commit(struct strbuf *sb, char *end);
/* Writes value's decimal digits at p (at most 20) and returns the end. */
char *strbuf_put_u64(char *p, unsigned long long value);

/* Appends `data` as the inside of a JSON string: escapes quotes, backslashes and control
 * bytes, and replaces invalid UTF-8 with U+FFFD so the output is always valid JSON. */
void strbuf_append_json_string(struct strbuf *sb, const char *data, size_t len);

#endif
