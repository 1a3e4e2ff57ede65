/* fuzz_shellcmd: common/shellcmd.c's scan of a configured command (where `exec` goes so the
 * shell's last step replaces it). Input: the command, up to the first NUL. Checks that the
 * place is a word start inside the text, that shellcmd_for_sh inserts exactly "exec " there
 * and nothing else, that the result is recognised as replacing the shell and gets no second
 * exec, and that a simple command gets its exec at its first word. */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/shellcmd.h"
#include "tests/fuzz/fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len = strnlen((const char *)data, size);
    char *cmd = malloc(len + 1);
    if (!cmd)
        abort();
    memcpy(cmd, data, len);
    cmd[len] = '\0';

    long at = shellcmd_exec_offset(cmd);
    char *sh = shellcmd_for_sh(cmd);
    if (at < 0) {
        FUZZ_CHECK(at == -1, "offset %ld", at);
        FUZZ_CHECK(strcmp(sh, cmd) == 0, "changed without a place for exec: \"%s\"", sh);
        FUZZ_CHECK(!shellcmd_is_simple(cmd), "simple but no place for exec");
    } else {
        FUZZ_CHECK((size_t)at < len, "offset %ld past %zu bytes", at, len);
        FUZZ_CHECK(!isspace((unsigned char)cmd[at]), "offset %ld on a space", at);
        FUZZ_CHECK(at == 0 || isspace((unsigned char)cmd[at - 1]) || cmd[at - 1] == '&' || cmd[at - 1] == ';',
                   "offset %ld not at a word start", at);
        FUZZ_CHECK(strlen(sh) == len + 5 && memcmp(sh, cmd, (size_t)at) == 0 &&
                       memcmp(sh + at, "exec ", 5) == 0 && strcmp(sh + at + 5, cmd + at) == 0,
                   "\"%s\" is not \"%s\" with exec at %ld", sh, cmd, at);
        FUZZ_CHECK(shellcmd_replaces_shell(cmd), "a place for exec but the shell stays");
        FUZZ_CHECK(shellcmd_exec_offset(sh) == -1, "exec inserted twice into \"%s\"", sh);
        FUZZ_CHECK(shellcmd_replaces_shell(sh), "its own exec not recognised in \"%s\"", sh);
        if (shellcmd_is_simple(cmd)) {
            size_t first = 0;
            while (isspace((unsigned char)cmd[first]))
                first++;
            FUZZ_CHECK((size_t)at == first, "simple command, exec at %ld not %zu", at, first);
        }
    }
    free(sh);
    free(cmd);
    return 0;
}
