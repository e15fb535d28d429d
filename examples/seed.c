/*
 * The seed scenario of ntrace (2010), which superv reproduces.
 *
 *   seed serve PORT [recv]   accept one connection on 127.0.0.1:PORT; a forked
 *                            child reads it with read() (or recv()) into a
 *                            2048-byte buffer and writes what it got into a
 *                            pipe, while the parent reads the pipe.
 *   seed send PORT [BYTES]   connect (retrying while the server starts) and
 *                            send BYTES bytes (default 2048), then close.
 *
 * The server prints nothing, so that its only I/O is the scenario's.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return a;
}

/* reads from the net, writes to a pipe */
static void read_client(int sock, int fd, int use_recv)
{
    ssize_t n;
    char buff[2048] = {0};
    while ((n = use_recv ? recv(sock, buff, 2048, 0) : read(sock, buff, 2048)) > 0)
        write(fd, buff, (size_t)n);
}

static int serve(int port, int use_recv)
{
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    struct sockaddr_in a = loopback(port);
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 10) < 0)
        return 2;
    int c = accept(s, NULL, NULL);
    if (c < 0)
        return 3;
    int p[2];
    if (pipe(p) < 0)
        return 4;
    pid_t child = fork();
    if (child == 0) {
        close(p[0]);
        read_client(c, p[1], use_recv);
        close(p[1]);
        _exit(0);
    }
    close(p[1]);
    char buff[2048];
    while (read(p[0], buff, sizeof buff) > 0)
        ;
    close(p[0]);
    close(c);
    close(s);
    int status;
    waitpid(child, &status, 0);
    return 0;
}

static int send_bytes(int port, long bytes)
{
    struct sockaddr_in a = loopback(port);
    struct timespec pause = {0, 20 * 1000 * 1000};
    for (int attempt = 0; attempt < 250; attempt++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
            char chunk[2048];
            memset(chunk, 'x', sizeof chunk);
            while (bytes > 0) {
                ssize_t n = send(s, chunk, bytes < (long)sizeof chunk ? (size_t)bytes : sizeof chunk, 0);
                if (n < 0)
                    return 5;
                bytes -= n;
            }
            close(s);
            return 0;
        }
        close(s);
        nanosleep(&pause, NULL);
    }
    fprintf(stderr, "seed: cannot connect to port %d: %s\n", port, strerror(errno));
    return 6;
}

int main(int argc, char **argv)
{
    if (argc >= 3 && strcmp(argv[1], "serve") == 0)
        return serve(atoi(argv[2]), argc > 3 && strcmp(argv[3], "recv") == 0);
    if (argc >= 3 && strcmp(argv[1], "send") == 0)
        return send_bytes(atoi(argv[2]), argc > 3 ? atol(argv[3]) : 2048);
    fprintf(stderr, "usage: seed serve PORT [recv] | seed send PORT [BYTES]\n");
    return 64;
}
