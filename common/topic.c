/* topic: word-by-word matching; '#' backtracks over the words it could swallow, which is
 * bounded by the (short) number of words in an event type. */
#include "common/topic.h"

#include <string.h>

static const char *word_end(const char *s)
{
    const char *dot = strchr(s, '.');
    return dot ? dot : s + strlen(s);
}

static int match_from(const char *p, const char *t)
{
    for (;;) {
        if (!*p)
            return !*t;
        const char *pe = word_end(p);
        size_t plen = (size_t)(pe - p);
        const char *pnext = *pe ? pe + 1 : pe;
        if (plen == 1 && *p == '#') {
            /* '#' takes zero words, or one more word each step */
            if (match_from(pnext, t))
                return 1;
            /* "a.#" also matches "a": '#' at the end matches nothing after a dot */
            while (*t) {
                const char *te = word_end(t);
                t = *te ? te + 1 : te;
                if (match_from(pnext, t))
                    return 1;
                if (!*te)
                    break;
            }
            return 0;
        }
        if (!*t)
            return 0;
        const char *te = word_end(t);
        size_t tlen = (size_t)(te - t);
        if (!(plen == 1 && *p == '*') && (plen != tlen || memcmp(p, t, plen) != 0))
            return 0;
        /* both must end together or both go on */
        if (!*pe && *te)
            return 0;
        if (*pe && !*te) {
            /* the rest of the pattern must be able to match nothing: only '#' words */
            return match_from(pnext, "");
        }
        p = pnext;
        t = *te ? te + 1 : te;
    }
}

int topic_match(const char *pattern, const char *type)
{
    return match_from(pattern, type);
}

int topic_pattern_valid(const char *pattern)
{
    if (!*pattern)
        return 0;
    const char *p = pattern;
    for (;;) {
        const char *e = word_end(p);
        size_t len = (size_t)(e - p);
        if (len == 0)
            return 0;
        for (const char *c = p; c < e; c++)
            if ((*c == '*' || *c == '#') && len != 1)
                return 0;
        if (!*e)
            return 1;
        p = e + 1;
    }
}
