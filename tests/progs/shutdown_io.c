/* shutdown_io: shutdown() right after socketpair() (the supervisor still
 * has to learn socketpair's result, so Python records it) and again on an
 * fd already in use (the fast path records it); each shutdown's effect is
 * checked.  Prints "fds A B" and exits 0 when all went as natively. */
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void)
{
    int sv[2];
    char c;
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 1;
    if (shutdown(sv[0], SHUT_WR) < 0)
        return 2;
    if (read(sv[1], &c, 1) != 0) /* sv[0] sends no more: EOF */
        return 3;
    if (write(sv[1], "x", 1) != 1 || read(sv[0], &c, 1) != 1 || c != 'x')
        return 4;
    if (shutdown(sv[1], SHUT_WR) < 0)
        return 5;
    if (read(sv[0], &c, 1) != 0)
        return 6;
    printf("fds %d %d\n", sv[0], sv[1]);
    return 0;
}
