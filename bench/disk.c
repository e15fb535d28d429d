/* disk SIZE COUNT FILE: writes COUNT blocks of SIZE bytes into FILE, reads
 * it back with a SIZE-byte buffer, then removes it (page cache; no fsync). */
#include "common.h"

int main(int argc, char **argv)
{
    (void)argc;
    size_t size = (size_t)arg_long(argv, 1, "SIZE COUNT FILE");
    long count = arg_long(argv, 2, "SIZE COUNT FILE");
    const char *path = argv[3];
    char *buf = buffer(size ? size : 1);
    shared_init();
    if (size == 0 || !path)
        die("usage: disk SIZE COUNT FILE");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0)
        die(path);
    for (long i = 0; i < count; i++) {
        stamp(buf, size, i);
        counted_out_all(fd, buf, size, 0);
    }
    if (lseek(fd, 0, SEEK_SET) != 0)
        die("lseek");
    long long bytes = 0;
    ssize_t n;
    while ((n = counted_in(fd, buf, size, 0)) > 0) {
        add_sum(buf, (size_t)n);
        bytes += n;
    }
    close(fd);
    unlink(path);
    report(count, bytes);
    return 0;
}
