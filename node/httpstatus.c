/* httpstatus: "HTTP/1.1 200 OK\r\n" -> 200. Only the status line matters to a probe (2xx and
 * 3xx are healthy), so this reads "HTTP/" DIGIT "." DIGIT SP 3DIGIT (SP | CR | LF) and stops;
 * headers and body are never parsed, which is why libhttp-parser is not used for it. */
#include "node/httpstatus.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

int http_status_parse(const char *buf, size_t len, int *code)
{
    /* The shape, one class per byte: literal, D for a digit, E for the end of the code. */
    static const char shape[] = "HTTP/D.D DDDE";
    for (size_t i = 0; i < sizeof shape - 1; i++) {
        if (i >= len)
            return 0;
        char want = shape[i], c = buf[i];
        int ok = want == 'D' ? is_digit(c) : want == 'E' ? (c == ' ' || c == '\r' || c == '\n') : c == want;
        if (!ok)
            return -1;
    }
    int n = (buf[9] - '0') * 100 + (buf[10] - '0') * 10 + (buf[11] - '0');
    if (n < 100)
        return -1;
    *code = n;
    return 1;
}
