/* pingpong SIZE ROUNDS: two processes, two pipes; the parent writes SIZE
 * bytes, the child reads them all and writes them back, ROUNDS times. */
#include "common.h"

int main(int argc, char **argv)
{
    (void)argc;
    size_t size = (size_t)arg_long(argv, 1, "SIZE ROUNDS");
    long rounds = arg_long(argv, 2, "SIZE ROUNDS");
    int there[2], back[2];
    char *buf = buffer(size ? size : 1);
    shared_init();
    if (size == 0 || pipe(there) < 0 || pipe(back) < 0)
        die("pipe");
    pid_t child = fork_as(1);
    if (child == 0) {
        close(there[1]);
        close(back[0]);
        for (long i = 0; i < rounds; i++) {
            counted_in_all(there[0], buf, size, 0);
            counted_out_all(back[1], buf, size, 0);
        }
        _exit(0);
    }
    close(there[0]);
    close(back[1]);
    for (long i = 0; i < rounds; i++) {
        stamp(buf, size, i);
        counted_out_all(there[1], buf, size, 0);
        counted_in_all(back[0], buf, size, 0);
        add_sum(buf, size);
    }
    wait_child(child);
    report(rounds, (long long)rounds * (long long)size * 2);
    return 0;
}
