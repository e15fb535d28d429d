/* TCP sends from a buffer that faults after `readable` bytes.  The kernel
 * copies a TCP send in chunks (page fragments of the sending thread) and
 * drops the chunk that faults: a send gives EFAULT, or the whole chunks
 * before the fault, never every readable byte.  Prints each send's result,
 * then what the peer received and the sum of the counts. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
    const size_t page = 4096, pages = 12;
    char *m = mmap(NULL, (pages + 1) * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    memset(m, 'x', pages * page);
    munmap(m + pages * page, page); /* the fault */
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (bind(listener, (struct sockaddr *)&a, len) < 0 || listen(listener, 1) < 0 ||
        getsockname(listener, (struct sockaddr *)&a, &len) < 0)
        return 1;
    int c = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(c, (struct sockaddr *)&a, len) < 0)
        return 1;
    int s = accept(listener, NULL, NULL);
    /* Odd sizes, so that a chunk boundary falls on the fault by chance
     * only once in tens of thousands of runs. */
    const size_t readable[] = {7193, 7193, 45001, 45001, 1};
    long long sum = 0;
    for (size_t i = 0; i < sizeof readable / sizeof *readable; i++) {
        ssize_t n = send(c, m + pages * page - readable[i], 1u << 31, MSG_DONTWAIT);
        if (n < 0)
            printf("send, %zu readable = -1 %s\n", readable[i], strerrorname_np(errno));
        else
            printf("send, %zu readable = %zd\n", readable[i], n);
        sum += n > 0 ? n : 0;
    }
    shutdown(c, SHUT_WR);
    char buf[65536];
    long long received = 0;
    ssize_t r;
    while ((r = recv(s, buf, sizeof buf, 0)) > 0)
        received += r;
    printf("received %lld, sent %lld\n", received, sum);
    return 0;
}
