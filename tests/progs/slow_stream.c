/* A child writes COUNT chunks of 100 bytes into a pipe, one every GAP_MS
 * milliseconds; the parent reads them.  For heartbeat and trace tests. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    int count = argc > 1 ? atoi(argv[1]) : 10, gap_ms = argc > 2 ? atoi(argv[2]) : 50;
    int p[2];
    char buf[100];
    if (pipe(p) < 0)
        return 1;
    pid_t child = fork();
    if (child == 0) {
        struct timespec gap = {gap_ms / 1000, (gap_ms % 1000) * 1000000L};
        close(p[0]);
        memset(buf, 's', sizeof buf);
        for (int i = 0; i < count; i++) {
            if (write(p[1], buf, sizeof buf) != sizeof buf)
                _exit(2);
            nanosleep(&gap, NULL);
        }
        _exit(0);
    }
    close(p[1]);
    long total = 0;
    ssize_t n;
    while ((n = read(p[0], buf, sizeof buf)) > 0)
        total += n;
    int status;
    waitpid(child, &status, 0);
    return total == 100L * count ? 0 : 3;
}
