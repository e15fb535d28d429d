/* The zero-copy and transfer calls, each printing its result, then plain
 * writes to the pipes they used (a spliced pipe refuses RWF_NOWAIT).
 *   transfer FILE   (a scratch file path) */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

static unsigned sum(const char *b, ssize_t n)
{
    unsigned s = 0;
    for (ssize_t i = 0; i < n; i++)
        s = s * 31 + (unsigned char)b[i];
    return s;
}

int main(int argc, char **argv)
{
    char buf[8192], data[5000];
    ssize_t n0, n; /* each result printed after the call: argument order is unspecified */
    for (int i = 0; i < (int)sizeof data; i++)
        data[i] = (char)('a' + i % 26);
    int f = open(argc > 1 ? argv[1] : "/tmp/superv-transfer.bin", O_RDWR | O_CREAT | O_TRUNC, 0600);
    int g = open(argc > 1 ? argv[1] : "/tmp/superv-transfer.bin", O_RDWR);
    write(f, data, sizeof data);
    int p[2], q[2], s[2];
    pipe(p);
    pipe(q);
    socketpair(AF_UNIX, SOCK_STREAM, 0, s);

    loff_t off = 100;
    n0 = splice(f, &off, p[1], NULL, 1234, 0);
    printf("splice file->pipe %zd off %lld\n", n0, (long long)off);
    printf("tee pipe->pipe %zd\n", tee(p[0], q[1], 1000, 0));
    printf("splice pipe->pipe %zd\n", splice(p[0], NULL, q[1], NULL, 1234, 0));
    n = read(q[0], buf, sizeof buf);
    printf("read q %zd sum %u\n", n, sum(buf, n));
    struct iovec v = {.iov_base = data, .iov_len = 777};
    printf("vmsplice into p %zd\n", vmsplice(p[1], &v, 1, 0));
    struct iovec r = {.iov_base = buf, .iov_len = 500};
    n = vmsplice(p[0], &r, 1, 0);
    printf("vmsplice out of p %zd sum %u\n", n, sum(buf, n));
    n = read(p[0], buf, sizeof buf);
    printf("read p %zd sum %u\n", n, sum(buf, n));
    off = 10;
    n0 = sendfile(s[0], f, &off, 2500);
    printf("sendfile file->socket %zd off %lld\n", n0, (long long)off);
    n = recv(s[1], buf, sizeof buf, 0);
    printf("recv %zd sum %u\n", n, sum(buf, n));
    lseek(f, 0, SEEK_SET);
    n0 = sendfile(s[0], f, NULL, 300);
    printf("sendfile at the file position %zd pos %lld\n", n0, (long long)lseek(f, 0, SEEK_CUR));
    n = recv(s[1], buf, sizeof buf, 0);
    printf("recv %zd sum %u\n", n, sum(buf, n));
    loff_t in = 0, out = 5000;
    n0 = copy_file_range(f, &in, g, &out, 4000, 0);
    printf("copy_file_range %zd in %lld out %lld\n", n0, (long long)in, (long long)out);
    n = pread(g, buf, sizeof buf, 5000);
    printf("pread %zd sum %u\n", n, sum(buf, n));
    /* the pipes were spliced: plain writes and reads must still work */
    n0 = write(p[1], "after", 5);
    n = write(q[1], "more!", 5);
    printf("write p %zd write q %zd\n", n0, n);
    n0 = read(p[0], buf, 100);
    n = read(q[0], buf + 100, 100);
    printf("read p %zd read q %zd\n", n0, n);
    printf("splice bad fd %zd\n", splice(99, NULL, q[1], NULL, 1, 0));
    return 0;
}
