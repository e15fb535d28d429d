/* Tries the ways around a seccomp filter that only checks x86_64 numbers.
 *   int80      write(1, "i386 write\n") through the i386 ABI (int 0x80)
 *   x32        write(1, ...) with the x32 bit set in the syscall number
 *   io_uring   io_uring_setup(8, &params): prints the result and errno
 *   aio FILE   legacy AIO: io_setup, then io_submit of a write of "aio write\n"
 *              to FILE (no write() call at all); prints each result
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    if (strcmp(argv[1], "int80") == 0) {
        /* The i386 ABI takes 32-bit pointers: put the text below 4 GiB. */
        char *text = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        strcpy(text, "i386 write\n");
        long ret;
        __asm__ volatile("int $0x80"
                         : "=a"(ret)
                         : "a"(4), "b"(1), "c"((unsigned int)(unsigned long)text), "d"(11)
                         : "memory");
        return ret == 11 ? 0 : 1;
    }
    if (strcmp(argv[1], "x32") == 0) {
        long ret = syscall(0x40000000 | SYS_write, 1, "x32 write\n", 10);
        printf("x32 returned %ld errno %d\n", ret, ret < 0 ? errno : 0);
        return 0;
    }
    if (strcmp(argv[1], "io_uring") == 0) {
        unsigned char params[120];
        memset(params, 0, sizeof params);
        long ret = syscall(425, 8, params);
        printf("io_uring_setup %ld %s\n", ret, ret < 0 ? strerrorname_np(errno) : "ok");
        return 0;
    }
    if (strcmp(argv[1], "aio") == 0 && argc > 2) {
        aio_context_t ctx = 0;
        long ret = syscall(SYS_io_setup, 1, &ctx);
        printf("io_setup %ld %s\n", ret, ret < 0 ? strerrorname_np(errno) : "ok");
        if (ret == 0) {
            static const char text[] = "aio write\n";
            int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
            struct iocb cb;
            memset(&cb, 0, sizeof cb);
            cb.aio_lio_opcode = IOCB_CMD_PWRITE;
            cb.aio_fildes = (unsigned)fd;
            cb.aio_buf = (unsigned long)text;
            cb.aio_nbytes = sizeof text - 1;
            struct iocb *list[1] = {&cb};
            long submitted = syscall(SYS_io_submit, ctx, 1, list);
            struct io_event done;
            long got = submitted == 1 ? syscall(SYS_io_getevents, ctx, 1, 1, &done, NULL) : 0;
            printf("io_submit %ld moved %lld\n", submitted, got == 1 ? (long long)done.res : -1LL);
        }
        return 0;
    }
    return 64;
}
