/* notify_ready: a worker that is ready at once by sd_notify: it sends READY=1 to
 * $NOTIFY_SOCKET from its own pid (so the node knows whose it is, however soon it reads the
 * datagram), then waits for its stop signal. bench_order.py starts 100 of them. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !path[0] || strlen(path) >= sizeof ((struct sockaddr_un *)0)->sun_path) {
        fprintf(stderr, "notify_ready: no usable NOTIFY_SOCKET\n");
        return 1;
    }
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, path, strlen(path));
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(path));
    if (path[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, "READY=1", 7, 0, (struct sockaddr *)&sa, len) != 7) {
        perror("notify_ready: sendto");
        return 1;
    }
    close(fd);
    for (;;)
        pause();
}
