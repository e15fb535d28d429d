/* Tries the ways around a seccomp filter that only checks x86_64 numbers.
 *   int80      write(1, "i386 write\n") through the i386 ABI (int 0x80)
 *   int80_open FILE
 *              open(FILE, O_WRONLY | O_CREAT) through the i386 ABI; prints the fd
 *   int80_socketcall
 *              socketcall(SYS_SOCKET, {AF_INET, SOCK_STREAM, 0}) through the
 *              i386 ABI; prints the fd
 *   x32        write(1, ...) with the x32 bit set in the syscall number
 *   io_uring   io_uring_setup(8, &params): prints the result and errno
 *   io_uring_write [sqpoll]
 *              writes "io_uring write" to stdout through an io_uring (with
 *              SQPOLL, a kernel thread takes the write from the shared ring:
 *              no syscall moves the bytes); prints the setup's result
 *   aio FILE   legacy AIO: io_setup, then io_submit of a write of "aio write\n"
 *              to FILE (no write() call at all); prints each result
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <linux/io_uring.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static long int80(long nr, unsigned int a, unsigned int b, unsigned int c)
{
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b), "d"(c) : "memory");
    return ret;
}

/* A write of a line to stdout, made by the kernel from an io_uring's
 * rings: the submission is a store into shared memory, and with SQPOLL
 * not even io_uring_enter is needed while the poller is awake. */
static int io_uring_write(int sqpoll)
{
    static const char text[] = "io_uring write\n";
    struct io_uring_params p;
    memset(&p, 0, sizeof p);
    p.flags = sqpoll ? IORING_SETUP_SQPOLL : 0;
    p.sq_thread_idle = 1000;
    int ring = (int)syscall(SYS_io_uring_setup, 4, &p);
    printf("io_uring_setup%s %d %s\n", sqpoll ? " sqpoll" : "", ring < 0 ? -1 : 0, ring < 0 ? strerrorname_np(errno) : "ok");
    fflush(stdout);
    if (ring < 0)
        return 0;
    size_t sq_size = p.sq_off.array + p.sq_entries * sizeof(unsigned);
    char *sq = mmap(NULL, sq_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQ_RING);
    struct io_uring_sqe *sqes = mmap(NULL, p.sq_entries * sizeof *sqes, PROT_READ | PROT_WRITE,
                                     MAP_SHARED | MAP_POPULATE, ring, IORING_OFF_SQES);
    if (sq == MAP_FAILED || sqes == MAP_FAILED)
        return 1;
    unsigned *tail = (unsigned *)(sq + p.sq_off.tail), *array = (unsigned *)(sq + p.sq_off.array);
    unsigned *flags = (unsigned *)(sq + p.sq_off.flags);
    unsigned index = *tail & *(unsigned *)(sq + p.sq_off.ring_mask);
    memset(&sqes[index], 0, sizeof sqes[index]);
    sqes[index].opcode = IORING_OP_WRITE;
    sqes[index].fd = 1;
    sqes[index].addr = (unsigned long)text;
    sqes[index].len = sizeof text - 1;
    sqes[index].off = (unsigned long long)-1; /* the file position, as write() */
    array[index] = index;
    __atomic_store_n(tail, *tail + 1, __ATOMIC_RELEASE);
    if (!sqpoll)
        syscall(SYS_io_uring_enter, ring, 1, 1, IORING_ENTER_GETEVENTS, NULL, 0);
    else if (__atomic_load_n(flags, __ATOMIC_ACQUIRE) & IORING_SQ_NEED_WAKEUP)
        syscall(SYS_io_uring_enter, ring, 0, 0, IORING_ENTER_SQ_WAKEUP, NULL, 0);
    usleep(200000); /* the poller writes meanwhile */
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return 64;
    /* The i386 ABI takes 32-bit pointers: its arguments go below 4 GiB. */
    char *low = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
    if (strcmp(argv[1], "int80") == 0) {
        strcpy(low, "i386 write\n");
        return int80(4, 1, (unsigned int)(unsigned long)low, 11) == 11 ? 0 : 1;
    }
    if (strcmp(argv[1], "int80_open") == 0 && argc > 2) {
        snprintf(low, 4096, "%s", argv[2]);
        printf("i386 open %ld\n", int80(5, (unsigned int)(unsigned long)low, O_WRONLY | O_CREAT, 0644));
        return 0;
    }
    if (strcmp(argv[1], "int80_socketcall") == 0) {
        unsigned int *args = (unsigned int *)low;
        args[0] = AF_INET, args[1] = SOCK_STREAM, args[2] = 0;
        printf("i386 socket %ld\n", int80(102, 1 /* SYS_SOCKET */, (unsigned int)(unsigned long)args, 0));
        return 0;
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
    if (strcmp(argv[1], "io_uring_write") == 0)
        return io_uring_write(argc > 2 && strcmp(argv[2], "sqpoll") == 0);
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
