/* burst: writes N numbered lines as fast as it can, for the log-path tests and benches.
 * Line k reads "burst <tag> <k> <padding>" so a reader can check every line arrived intact.
 * usage: burst N [TAG] [LINE_BYTES] [FILE]   (FILE: write there instead of stdout) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: burst N [TAG] [LINE_BYTES] [FILE]\n");
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    const char *tag = argc > 2 ? argv[2] : "x";
    long width = argc > 3 ? strtol(argv[3], NULL, 10) : 64;
    FILE *out = stdout;
    if (argc > 4 && !(out = fopen(argv[4], "w"))) {
        perror(argv[4]);
        return 1;
    }
    static char buf[1 << 16];
    setvbuf(out, buf, _IOFBF, sizeof buf);
    char pad[4096];
    memset(pad, 'p', sizeof pad);
    for (long i = 0; i < n; i++) {
        int head = fprintf(out, "burst %s %ld ", tag, i);
        long rest = width - head;
        if (rest > 0)
            fwrite(pad, 1, (size_t)(rest < (long)sizeof pad ? rest : (long)sizeof pad), out);
        fputc('\n', out);
    }
    return fclose(out) == 0 ? 0 : 1;
}
