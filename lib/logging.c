/* logging.c: the current trace id and the log lines that carry it, in the form the node's log
 * hub indexes (`LEVEL message trace_id=V`). A line must never be split or left in a buffer:
 * newlines are folded and stdout is flushed per line. */
#include "lib/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int trace_char_ok(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
}

void dn_trace_sanitize(char out[DEVNODE_TRACE_ID_MAX + 1], const char *in, size_t len)
{
    if (len > DEVNODE_TRACE_ID_MAX)
        len = DEVNODE_TRACE_ID_MAX;
    /* The node only recognises [A-Za-z0-9_-]{1,64}; anything else would break the index. */
    for (size_t i = 0; i < len; i++)
        out[i] = trace_char_ok(in[i]) ? in[i] : '_';
    out[len] = '\0';
    if (strcmp(out, "None") == 0) /* the log parser's word for "no trace" */
        out[0] = '\0';
}

static void put_hex(char *out, uint64_t v, int digits)
{
    static const char hex[] = "0123456789abcdef";
    for (int i = digits - 1; i >= 0; i--, v >>= 4)
        out[i] = hex[v & 15];
}

const char *dn_trace_or_new(struct devnode *dn, char tmp[DEVNODE_TRACE_ID_MAX + 1])
{
    if (dn->trace_id[0])
        return dn->trace_id;
    /* 32 hex digits as rpc_new_trace_id makes, without its getrandom per id: the process's
     * random call prefix, its pid and a counter (a loop of no-wait emits makes one per event). */
    memcpy(tmp, dn->call_prefix, 8);
    put_hex(tmp + 8, (uint64_t)(uint32_t)dn->pid, 8);
    put_hex(tmp + 16, ++dn->trace_counter, 16);
    tmp[32] = '\0';
    return tmp;
}

const char *devnode_trace_id(const struct devnode *dn)
{
    return dn->trace_id;
}

const char *devnode_set_trace_id(struct devnode *dn, const char *id)
{
    if (!id)
        rpc_new_trace_id(dn->trace_id);
    else
        dn_trace_sanitize(dn->trace_id, id, strlen(id));
    return dn->trace_id;
}

void *devnode_error_set(struct devnode_error *err, const char *type, const char *fmt, ...)
{
    if (!err)
        return NULL;
    snprintf(err->type, sizeof err->type, "%s", type ? type : "HandlerError");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return NULL;
}

static const char *const level_names[] = {"DEBUG", "INFO", "WARNING", "ERROR"};

void devnode_set_warning_handler(struct devnode *dn, devnode_warning_fn fn, void *ctx)
{
    dn->warn_fn = fn;
    dn->warn_ctx = fn ? ctx : NULL;
}

void dn_warn(struct devnode *dn, enum devnode_level level, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    if (dn && dn->warn_fn) {
        dn->warn_fn(dn->warn_ctx, level, text);
        return;
    }
    const char *name = (unsigned)level < 4 ? level_names[level] : "WARNING";
    fprintf(stderr, "%s devnode: %s\n", name, text);
}

void devnode_log(struct devnode *dn, enum devnode_level level, const char *fmt, ...)
{
    char stack[2048];
    char *text = stack;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(stack, sizeof stack, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof stack) {
        /* Rare: a long message gets one heap buffer rather than being cut. */
        text = malloc((size_t)n + 1);
        if (!text) {
            text = stack;
        } else {
            va_start(ap, fmt);
            vsnprintf(text, (size_t)n + 1, fmt, ap);
            va_end(ap);
        }
    }
    for (char *p = text; *p; p++)
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    const char *name = (unsigned)level < 4 ? level_names[level] : "INFO";
    printf("%s %s trace_id=%s\n", name, text, dn && dn->trace_id[0] ? dn->trace_id : "None");
    fflush(stdout);
    if (text != stack)
        free(text);
}
