/* Bad buffers and bad arguments: each case prints the result (count or
 * errno name) and proves that nothing was consumed by reading again. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static void show(const char *what, ssize_t r)
{
    if (r < 0)
        printf("%s = -1 %s\n", what, strerrorname_np(errno));
    else
        printf("%s = %zd\n", what, r);
}

int main(void)
{
    char buf[64];
    int p[2], s[2];
    pipe(p);
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);
    char *readonly = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    char *unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(unmapped, 4096);

    write(p[1], "0123456789", 10);
    show("pipe read into NULL", read(p[0], NULL, 10));
    show("pipe read into a read-only page", read(p[0], readonly, 10));
    show("pipe read into an unmapped page", read(p[0], unmapped, 10));
    show("pipe read, all still there", read(p[0], buf, sizeof buf));
    printf("data %.*s\n", 10, buf);

    send(s[0], "abcdef", 6, 0);
    show("recv into a read-only page", recv(s[1], readonly, 6, 0));
    show("recv, all still there", recv(s[1], buf, sizeof buf, 0));

    show("write from NULL", write(p[1], NULL, 10));
    show("send from an unmapped page", send(s[0], unmapped, 10, 0));
    show("write of a kernel address", write(p[1], (void *)0xffff800000000000UL, 10));
    size_t huge = (size_t)-1; /* through a variable: the compiler would refuse it as a constant */
    show("read of a negative count", read(p[0], buf, huge));
    show("write on a bad fd", write(99, buf, 1));
    show("read from a write-only end", read(p[1], buf, 1));
    struct iovec many[1025];
    for (int i = 0; i < 1025; i++) {
        many[i].iov_base = buf;
        many[i].iov_len = 1;
    }
    show("readv of 1025 vectors", readv(p[0], many, 1025));
    show("readv with a bad vector array", readv(p[0], (struct iovec *)unmapped, 2));
    show("recv on a pipe", recv(p[0], buf, 1, MSG_DONTWAIT));
    show("pread on a pipe", pread(p[0], buf, 1, 0));
    show("pipe empty at the end (nonblocking peek)", recv(s[1], buf, 1, MSG_DONTWAIT));

    /* Counts of 2^31 and more over two mapped pages with nothing after
     * them: the kernel caps a count at MAX_RW_COUNT and stops at the fault. */
    int q[2];
    pipe2(q, O_NONBLOCK);
    char *two = mmap(NULL, 3 * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(two + 2 * 4096, 4096);
    memset(two, 'x', 2 * 4096);
    size_t big = (size_t)1 << 31, bigger = ((size_t)1 << 32) + 5;
    show("write of 2^31 bytes from two pages", write(q[1], two, big));
    show("read of 2^31 bytes into two pages", read(q[0], two, big));
    show("write of 2^32+5 bytes from two pages", write(q[1], two, bigger));
    show("read of 2^32+5 bytes into two pages", read(q[0], two, bigger));
    show("read of 2^31 bytes from an empty pipe", read(q[0], two, big));
    struct iovec wide = {two, big};
    show("writev of one 2^31-byte vector", writev(q[1], &wide, 1));
    show("readv of one 2^31-byte vector", readv(q[0], &wide, 1));

    /* A unix stream send copies one skb (36544 bytes here) at a time: a
     * fault in the first fails the call, a later one sends the skbs before. */
    show("unix send of 2^31 bytes from two pages", send(s[0], two, big, MSG_DONTWAIT));
    size_t pages = 13; /* 53248 bytes, of which the last 50000 are sent from */
    char *m = mmap(NULL, (pages + 1) * 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    munmap(m + pages * 4096, 4096);
    memset(m, 'y', pages * 4096);
    show("unix send of 2^31 bytes, 50000 readable", send(s[0], m + pages * 4096 - 50000, big, MSG_DONTWAIT));
    char *wide_buf = malloc(1 << 17);
    show("unix recv of what arrived", recv(s[1], wide_buf, 1 << 17, MSG_DONTWAIT));
    /* And a recv takes a chunk (an skb) whole or not at all: 50000 bytes
     * queued as 36544 + 13456, read into two pages, fail with EFAULT. */
    memset(wide_buf, 'z', 50000);
    show("unix send of 50000 bytes", send(s[0], wide_buf, 50000, MSG_DONTWAIT));
    show("unix recv of 1 MiB into two pages", recv(s[1], two, 1 << 20, MSG_DONTWAIT));
    show("unix recv, all still there", recv(s[1], wide_buf, 1 << 17, MSG_DONTWAIT));
    return 0;
}
