/*
 * superv._kernel: the thin layer between superv and the kernel.
 *
 * Each function wraps one kernel facility whose Python spelling is missing or
 * too lossy (seccomp notification ioctls, pidfd_getfd, process_vm_readv/writev,
 * recvmsg/sendmsg with raw socket addresses and control data, tee, ptrace).
 * No decisions live here: arguments in, the kernel's answer out, errors as
 * OSError with the kernel's errno.  Calls that can block release the GIL.
 */
#define PY_SSIZE_T_CLEAN
#define _GNU_SOURCE
#include <Python.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/stat.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* linux-libc-dev 6.1 predates these (kernel-facts: defined by hand). */
#ifndef SECCOMP_IOCTL_NOTIF_SET_FLAGS
#define SECCOMP_IOCTL_NOTIF_SET_FLAGS SECCOMP_IOW(4, __u64)
#endif
#ifndef SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP
#define SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP (1UL << 0)
#endif
#ifndef SYS_pidfd_getfd
#define SYS_pidfd_getfd 438
#endif

struct pidfd_info_v0 {
    uint64_t mask;
    uint64_t cgroupid;
    uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
    int32_t exit_code;
};
#define PIDFD_GET_INFO _IOWR(0xFF, 11, struct pidfd_info_v0)
#define PIDFD_INFO_EXIT (1UL << 3)

#define IOV_BATCH 1024 /* UIO_MAXIOV: the most one process_vm_* call takes */

static PyObject *oserror(void)
{
    return PyErr_SetFromErrno(PyExc_OSError);
}

/* ---- seccomp notification ------------------------------------------- */

static PyObject *k_notif_recv(PyObject *self, PyObject *args)
{
    int listener;
    struct seccomp_notif n;
    int rc;
    if (!PyArg_ParseTuple(args, "i", &listener))
        return NULL;
    memset(&n, 0, sizeof n); /* RECV insists on a zeroed buffer */
    Py_BEGIN_ALLOW_THREADS
    rc = ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &n);
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return oserror();
    return Py_BuildValue("(KIiIK(KKKKKK))", (unsigned long long)n.id, n.pid, n.data.nr,
                         n.data.arch, (unsigned long long)n.data.instruction_pointer,
                         (unsigned long long)n.data.args[0], (unsigned long long)n.data.args[1],
                         (unsigned long long)n.data.args[2], (unsigned long long)n.data.args[3],
                         (unsigned long long)n.data.args[4], (unsigned long long)n.data.args[5]);
}

static PyObject *k_notif_send(PyObject *self, PyObject *args)
{
    int listener, error;
    unsigned long long id;
    long long val;
    unsigned int flags;
    struct seccomp_notif_resp r;
    int rc;
    if (!PyArg_ParseTuple(args, "iKLiI", &listener, &id, &val, &error, &flags))
        return NULL;
    memset(&r, 0, sizeof r);
    r.id = id;
    r.val = val;
    r.error = error;
    r.flags = flags;
    /* SEND never blocks, and the GIL is kept: with SYNC_WAKE_UP the target
     * runs on this CPU at once, and were the GIL let go, another Python
     * thread could take it and make the receiver wait for it before its next
     * RECV.  Until that RECV, the target's next call is interruptible: a
     * signal then fails it with EINTR even where natively it cannot be. */
    rc = ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &r);
    if (rc < 0)
        return oserror();
    Py_RETURN_NONE;
}

static PyObject *k_notif_id_valid(PyObject *self, PyObject *args)
{
    int listener;
    unsigned long long id;
    if (!PyArg_ParseTuple(args, "iK", &listener, &id))
        return NULL;
    __u64 kid = id;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &kid) == 0)
        Py_RETURN_TRUE;
    if (errno == ENOENT)
        Py_RETURN_FALSE;
    return oserror();
}

static PyObject *k_notif_addfd(PyObject *self, PyObject *args)
{
    int listener, srcfd, newfd;
    unsigned long long id;
    unsigned int newfd_flags, flags;
    struct seccomp_notif_addfd a;
    int rc;
    if (!PyArg_ParseTuple(args, "iKiiII", &listener, &id, &srcfd, &newfd, &newfd_flags, &flags))
        return NULL;
    memset(&a, 0, sizeof a);
    a.id = id;
    a.flags = flags;
    a.srcfd = (__u32)srcfd;
    a.newfd = (__u32)newfd;
    a.newfd_flags = newfd_flags;
    /* The ioctl waits for the target to take the fd.  A signal ending that
     * wait leaves an ADDFD|SEND call marked answered with nothing installed:
     * the target's call returns 0, and our retry or answer gets EINPROGRESS
     * (seccomp_notify_addfd).  The wait is short (the target is woken to take
     * the fd, or it dies), so signals wait for it: the engine's wake-ups
     * (WAKE_SIGNAL) can reach any thread at any moment. */
    sigset_t every, before;
    sigfillset(&every);
    Py_BEGIN_ALLOW_THREADS
    pthread_sigmask(SIG_BLOCK, &every, &before);
    rc = ioctl(listener, SECCOMP_IOCTL_NOTIF_ADDFD, &a);
    int saved = errno;
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    errno = saved;
    Py_END_ALLOW_THREADS
    if (rc < 0)
        return oserror();
    return PyLong_FromLong(rc);
}

/* True when the kernel took the flag; False when it does not know it. */
static PyObject *k_notif_set_sync_wakeup(PyObject *self, PyObject *args)
{
    int listener;
    if (!PyArg_ParseTuple(args, "i", &listener))
        return NULL;
    __u64 flags = SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP;
    if (ioctl(listener, SECCOMP_IOCTL_NOTIF_SET_FLAGS, flags) == 0)
        Py_RETURN_TRUE;
    if (errno == EINVAL || errno == ENOTTY)
        Py_RETURN_FALSE;
    return oserror();
}

/* ---- pidfds ------------------------------------------------------------ */

static PyObject *k_pidfd_getfd(PyObject *self, PyObject *args)
{
    int pidfd, fd;
    if (!PyArg_ParseTuple(args, "ii", &pidfd, &fd))
        return NULL;
    long rc = syscall(SYS_pidfd_getfd, pidfd, fd, 0);
    if (rc < 0)
        return oserror();
    return PyLong_FromLong(rc);
}

/* The wait status of a reaped process, or None while it runs or is a zombie. */
static PyObject *k_pidfd_exit_status(PyObject *self, PyObject *args)
{
    int pidfd;
    struct pidfd_info_v0 info;
    if (!PyArg_ParseTuple(args, "i", &pidfd))
        return NULL;
    memset(&info, 0, sizeof info);
    info.mask = PIDFD_INFO_EXIT;
    if (ioctl(pidfd, PIDFD_GET_INFO, &info) < 0) {
        if (errno == ENOTTY || errno == EINVAL || errno == ESRCH)
            Py_RETURN_NONE;
        return oserror();
    }
    if (!(info.mask & PIDFD_INFO_EXIT))
        Py_RETURN_NONE;
    return PyLong_FromLong(info.exit_code);
}

/* ---- memory of another process ------------------------------------------ */

/* Fill remote[] from a Python sequence of (address, length) pairs. */
static int parse_iovs(PyObject *seq, struct iovec **out, Py_ssize_t *count, size_t *total)
{
    PyObject *fast = PySequence_Fast(seq, "iovs must be a sequence of (address, length)");
    if (!fast)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(fast);
    struct iovec *iov = PyMem_Calloc(n ? (size_t)n : 1, sizeof *iov);
    if (!iov) {
        Py_DECREF(fast);
        PyErr_NoMemory();
        return -1;
    }
    size_t sum = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned long long base, len;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(fast, i), "KK", &base, &len)) {
            PyMem_Free(iov);
            Py_DECREF(fast);
            return -1;
        }
        iov[i].iov_base = (void *)(uintptr_t)base;
        iov[i].iov_len = (size_t)len;
        sum += (size_t)len;
    }
    Py_DECREF(fast);
    *out = iov;
    *count = n;
    *total = sum;
    return 0;
}

/*
 * Move bytes between local[0] (one flat buffer) and the remote iovecs, in
 * batches of IOV_BATCH.  Stops at the first short transfer, as the kernel's
 * own copy does.  Returns the count moved, or -1 with errno when nothing moved.
 */
static ssize_t vm_transfer(pid_t tid, char *buf, struct iovec *remote, Py_ssize_t nremote,
                           int writing)
{
    size_t done = 0;
    for (Py_ssize_t first = 0; first < nremote; first += IOV_BATCH) {
        Py_ssize_t batch = nremote - first < IOV_BATCH ? nremote - first : IOV_BATCH;
        size_t want = 0;
        for (Py_ssize_t i = 0; i < batch; i++)
            want += remote[first + i].iov_len;
        if (want == 0)
            continue;
        struct iovec local = {.iov_base = buf + done, .iov_len = want};
        ssize_t n = writing ? process_vm_writev(tid, &local, 1, remote + first, batch, 0)
                            : process_vm_readv(tid, &local, 1, remote + first, batch, 0);
        if (n < 0)
            return done ? (ssize_t)done : -1;
        done += (size_t)n;
        if ((size_t)n < want)
            break;
    }
    return (ssize_t)done;
}

static PyObject *k_vm_read(PyObject *self, PyObject *args)
{
    int tid;
    PyObject *seq;
    struct iovec *remote;
    Py_ssize_t nremote;
    size_t total;
    if (!PyArg_ParseTuple(args, "iO", &tid, &seq))
        return NULL;
    if (parse_iovs(seq, &remote, &nremote, &total) < 0)
        return NULL;
    PyObject *out = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)total);
    if (!out) {
        PyMem_Free(remote);
        return NULL;
    }
    ssize_t n;
    Py_BEGIN_ALLOW_THREADS
    n = vm_transfer(tid, PyBytes_AS_STRING(out), remote, nremote, 0);
    Py_END_ALLOW_THREADS
    PyMem_Free(remote);
    if (n < 0) {
        Py_DECREF(out);
        return oserror();
    }
    if ((size_t)n != total && _PyBytes_Resize(&out, n) < 0)
        return NULL;
    return out;
}

static PyObject *k_vm_write(PyObject *self, PyObject *args)
{
    int tid;
    PyObject *seq;
    Py_buffer data;
    struct iovec *remote;
    Py_ssize_t nremote;
    size_t total;
    if (!PyArg_ParseTuple(args, "iOy*", &tid, &seq, &data))
        return NULL;
    if (parse_iovs(seq, &remote, &nremote, &total) < 0) {
        PyBuffer_Release(&data);
        return NULL;
    }
    /* Write at most len(data) bytes: trim the remote list to it. */
    size_t room = (size_t)data.len;
    Py_ssize_t used = 0;
    for (; used < nremote && room; used++) {
        if (remote[used].iov_len > room)
            remote[used].iov_len = room;
        room -= remote[used].iov_len;
    }
    ssize_t n;
    Py_BEGIN_ALLOW_THREADS
    n = vm_transfer(tid, data.buf, remote, used, 1);
    Py_END_ALLOW_THREADS
    PyMem_Free(remote);
    PyBuffer_Release(&data);
    if (n < 0)
        return oserror();
    return PyLong_FromSsize_t(n);
}

/* ---- sockets with raw addresses and control data ------------------------ */

/* recvmsg(fd, size, flags, namelen[, controllen])
 *   -> (n, data, name, control, msg_flags, full_namelen) */
static PyObject *k_recvmsg(PyObject *self, PyObject *args)
{
    int fd, flags;
    Py_ssize_t size, namelen, controllen = 0;
    if (!PyArg_ParseTuple(args, "inin|n", &fd, &size, &flags, &namelen, &controllen))
        return NULL;
    PyObject *data = PyBytes_FromStringAndSize(NULL, size);
    PyObject *name = PyBytes_FromStringAndSize(NULL, namelen);
    PyObject *control = PyBytes_FromStringAndSize(NULL, controllen);
    if (!data || !name || !control)
        goto fail;
    struct iovec iov = {.iov_base = PyBytes_AS_STRING(data), .iov_len = (size_t)size};
    struct msghdr msg = {
        .msg_name = namelen ? PyBytes_AS_STRING(name) : NULL,
        .msg_namelen = (socklen_t)namelen,
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = controllen ? PyBytes_AS_STRING(control) : NULL,
        .msg_controllen = (size_t)controllen,
    };
    ssize_t n;
    Py_BEGIN_ALLOW_THREADS
    n = TEMP_FAILURE_RETRY(recvmsg(fd, &msg, flags)); /* an EINTR of ours is not the caller's */
    Py_END_ALLOW_THREADS
    if (n < 0) {
        oserror();
        goto fail;
    }
    Py_ssize_t kept = n < size ? n : size;
    if (_PyBytes_Resize(&data, kept) < 0)
        goto fail;
    Py_ssize_t got_name = (Py_ssize_t)msg.msg_namelen < namelen ? msg.msg_namelen : namelen;
    if (!msg.msg_name)
        got_name = 0;
    if (_PyBytes_Resize(&name, got_name) < 0)
        goto fail;
    if (_PyBytes_Resize(&control, (Py_ssize_t)msg.msg_controllen) < 0)
        goto fail;
    /* The kernel's full address length, which may exceed what fitted. */
    return Py_BuildValue("(nNNNii)", (Py_ssize_t)n, data, name, control, msg.msg_flags,
                         (int)msg.msg_namelen);
fail:
    Py_XDECREF(data);
    Py_XDECREF(name);
    Py_XDECREF(control);
    return NULL;
}

/* sendmsg(fd, data, flags, name, control) -> n; name/control may be None. */
/* A private buffer of `len` bytes followed by an unmapped page, so that a
 * call on it faults where the caller's buffer does: the kernel's count for
 * a buffer that faults (a stream socket copies whole chunks, an skb or a
 * page fragment, and drops the one that faults) is then the kernel's own.
 * NULL with errno set; unmap with unmap_before_guard. */
static char *map_before_guard(size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = (len + (size_t)page - 1) / (size_t)page;
    char *base = mmap(NULL, (pages + 1) * (size_t)page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED)
        return NULL;
    char *guard = base + pages * (size_t)page;
    munmap(guard, (size_t)page);
    return guard - len;
}

static void unmap_before_guard(char *start, size_t len)
{
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = (len + (size_t)page - 1) / (size_t)page;
    munmap(start + len - pages * (size_t)page, pages * (size_t)page);
}

/* sendmsg(fd, data, flags, name, control, faults_after=False): with
 * faults_after, data is sent from a buffer that faults right after it, as
 * the caller's did (see map_before_guard). */
static PyObject *k_sendmsg(PyObject *self, PyObject *args)
{
    int fd, flags, faults_after = 0;
    Py_buffer data, name = {0}, control = {0};
    PyObject *name_obj, *control_obj;
    if (!PyArg_ParseTuple(args, "iy*iOO|p", &fd, &data, &flags, &name_obj, &control_obj, &faults_after))
        return NULL;
    if (name_obj != Py_None && PyObject_GetBuffer(name_obj, &name, PyBUF_SIMPLE) < 0)
        goto fail;
    if (control_obj != Py_None && PyObject_GetBuffer(control_obj, &control, PyBUF_SIMPLE) < 0)
        goto fail;
    size_t len = (size_t)data.len;
    char *shaped = NULL;
    if (faults_after && !(shaped = map_before_guard(len))) {
        PyErr_SetFromErrno(PyExc_OSError);
        goto fail;
    }
    if (shaped)
        memcpy(shaped, data.buf, len);
    struct iovec iov = {.iov_base = shaped ? shaped : data.buf, .iov_len = shaped ? len + 1 : len};
    struct msghdr msg = {
        .msg_name = name.buf,
        .msg_namelen = (socklen_t)name.len,
        .msg_iov = &iov,
        .msg_iovlen = 1,
        .msg_control = control.len ? control.buf : NULL,
        .msg_controllen = (size_t)control.len,
    };
    ssize_t n;
    Py_BEGIN_ALLOW_THREADS
    n = TEMP_FAILURE_RETRY(sendmsg(fd, &msg, flags));
    Py_END_ALLOW_THREADS
    int error = errno;
    if (shaped)
        unmap_before_guard(shaped, len);
    PyBuffer_Release(&data);
    if (name.obj)
        PyBuffer_Release(&name);
    if (control.obj)
        PyBuffer_Release(&control);
    if (n < 0) {
        errno = error;
        return oserror();
    }
    return PyLong_FromSsize_t(n);
fail:
    PyBuffer_Release(&data);
    if (name.obj)
        PyBuffer_Release(&name);
    if (control.obj)
        PyBuffer_Release(&control);
    return NULL;
}

static PyObject *k_tee(PyObject *self, PyObject *args)
{
    int fd_in, fd_out;
    Py_ssize_t len;
    unsigned int flags;
    if (!PyArg_ParseTuple(args, "iinI", &fd_in, &fd_out, &len, &flags))
        return NULL;
    ssize_t n;
    Py_BEGIN_ALLOW_THREADS
    n = TEMP_FAILURE_RETRY(tee(fd_in, fd_out, (size_t)len, flags)); /* it looks for signals first */
    Py_END_ALLOW_THREADS
    if (n < 0)
        return oserror();
    return PyLong_FromSsize_t(n);
}

/* peek_shaped(fd, writable, size) -> what recv(fd, buf, size, MSG_PEEK |
 * MSG_DONTWAIT) returns when buf has `writable` bytes and then a fault, as
 * the caller's buffer has (see map_before_guard).  A count, or -errno. */
static PyObject *k_peek_shaped(PyObject *self, PyObject *args)
{
    int fd;
    Py_ssize_t writable, size;
    if (!PyArg_ParseTuple(args, "inn", &fd, &writable, &size) || writable < 0 || size < 0)
        return NULL;
    ssize_t n;
    Py_BEGIN_ALLOW_THREADS
    char *shaped = map_before_guard((size_t)writable);
    if (!shaped) {
        n = -errno;
    } else {
        n = TEMP_FAILURE_RETRY(recv(fd, shaped, (size_t)size, MSG_PEEK | MSG_DONTWAIT));
        if (n < 0)
            n = -errno;
        unmap_before_guard(shaped, (size_t)writable);
    }
    Py_END_ALLOW_THREADS
    return PyLong_FromSsize_t(n);
}

/* socket_facts(fd) -> (family, type, protocol, local_raw, remote_raw or None) */
static PyObject *k_socket_facts(PyObject *self, PyObject *args)
{
    int fd, family, type, protocol;
    socklen_t len = sizeof(int);
    struct sockaddr_storage local, remote;
    socklen_t local_len = sizeof local, remote_len = sizeof remote;
    if (!PyArg_ParseTuple(args, "i", &fd))
        return NULL;
    if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &family, &len) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &protocol, &len) < 0)
        return oserror();
    if (getsockname(fd, (struct sockaddr *)&local, &local_len) < 0)
        local_len = 0;
    if (local_len > sizeof local)
        local_len = sizeof local;
    int connected = getpeername(fd, (struct sockaddr *)&remote, &remote_len) == 0;
    if (remote_len > sizeof remote)
        remote_len = sizeof remote;
    if (!connected)
        return Py_BuildValue("(iiiy#O)", family, type, protocol, (const char *)&local,
                             (Py_ssize_t)local_len, Py_None);
    return Py_BuildValue("(iiiy#y#)", family, type, protocol, (const char *)&local,
                         (Py_ssize_t)local_len, (const char *)&remote, (Py_ssize_t)remote_len);
}

/* bind() as the program would make it: in a thread of its own with a
 * private cwd and umask (unshare(CLONE_FS)), the program's, so that a
 * relative path lands where the program's own bind would put it and the
 * socket keeps the very name the program gave.  0 or -errno. */
struct bind_job {
    int fd, cwd, umask, result;
    const struct sockaddr *address;
    socklen_t length;
};

static void *bind_in_private_fs(void *arg)
{
    struct bind_job *job = arg;
    if (unshare(CLONE_FS) < 0 || fchdir(job->cwd) < 0) {
        job->result = -errno;
        return NULL;
    }
    umask((mode_t)job->umask);
    job->result = bind(job->fd, job->address, job->length) < 0 ? -errno : 0;
    return NULL;
}

static PyObject *k_bind_as(PyObject *self, PyObject *args)
{
    struct bind_job job;
    Py_buffer address;
    if (!PyArg_ParseTuple(args, "iy*ii", &job.fd, &address, &job.cwd, &job.umask))
        return NULL;
    job.address = (const struct sockaddr *)address.buf;
    job.length = (socklen_t)address.len;
    pthread_t thread;
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = pthread_create(&thread, NULL, bind_in_private_fs, &job);
    if (rc == 0)
        pthread_join(thread, NULL);
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&address);
    return PyLong_FromLong(rc ? -rc : job.result);
}

/* renameat2() with its flags (Python's os.rename has none): 0 or -errno. */
static PyObject *k_renameat2(PyObject *self, PyObject *args)
{
    int olddir, newdir;
    const char *oldname, *newname;
    unsigned int flags;
    if (!PyArg_ParseTuple(args, "iyiyI", &olddir, &oldname, &newdir, &newname, &flags))
        return NULL;
    long rc = syscall(SYS_renameat2, olddir, oldname, newdir, newname, flags);
    return PyLong_FromLong(rc < 0 ? -errno : 0);
}

/* fchownat(), which with AT_EMPTY_PATH changes the file an O_PATH fd holds
 * (a symlink too): 0 or -errno. */
static PyObject *k_fchownat(PyObject *self, PyObject *args)
{
    int dir, flags;
    const char *name;
    long owner, group;
    if (!PyArg_ParseTuple(args, "iylli", &dir, &name, &owner, &group, &flags))
        return NULL;
    long rc = syscall(SYS_fchownat, dir, name, (uid_t)owner, (gid_t)group, flags);
    return PyLong_FromLong(rc < 0 ? -errno : 0);
}

static PyObject *k_tgkill(PyObject *self, PyObject *args)
{
    int tgid, tid, sig;
    if (!PyArg_ParseTuple(args, "iii", &tgid, &tid, &sig))
        return NULL;
    if (syscall(SYS_tgkill, tgid, tid, sig) < 0)
        return oserror();
    Py_RETURN_NONE;
}

/* connect() with a raw struct sockaddr, without blocking: the supervisor
 * connects the target's socket (its duplicate) with its own copy of the
 * address.  O_NONBLOCK is set on the shared file description for the one
 * call; every other I/O on it goes through the supervisor, which holds its
 * lock meanwhile, so no call of the program's sees the flag.  0 or -errno. */
static PyObject *k_connect_nowait(PyObject *self, PyObject *args)
{
    int fd;
    Py_buffer address;
    if (!PyArg_ParseTuple(args, "iy*", &fd, &address))
        return NULL;
    int flags = fcntl(fd, F_GETFL), rc;
    if (flags < 0) {
        PyBuffer_Release(&address);
        return PyLong_FromLong(-errno);
    }
    if (!(flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    rc = connect(fd, (const struct sockaddr *)address.buf, (socklen_t)address.len) < 0 ? -errno : 0;
    if (!(flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, flags);
    PyBuffer_Release(&address);
    return PyLong_FromLong(rc);
}

/* accept4() on the target's listening socket (its duplicate) that never
 * blocks, as connect_nowait(): (new fd, peer's raw struct sockaddr), or
 * -errno (EAGAIN: nothing to accept yet).  The new fd is close-on-exec here;
 * flags: the program's SOCK_NONBLOCK. */
static PyObject *k_accept_nowait(PyObject *self, PyObject *args)
{
    int fd, accept_flags;
    if (!PyArg_ParseTuple(args, "ii", &fd, &accept_flags))
        return NULL;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0)
        return PyLong_FromLong(-errno);
    struct sockaddr_storage peer;
    socklen_t len = sizeof peer;
    if (!(flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int made = accept4(fd, (struct sockaddr *)&peer, &len, (accept_flags & SOCK_NONBLOCK) | SOCK_CLOEXEC);
    int error = errno;
    if (!(flags & O_NONBLOCK))
        fcntl(fd, F_SETFL, flags);
    if (made < 0)
        return PyLong_FromLong(-error);
    return Py_BuildValue("(iy#)", made, (const char *)&peer, (Py_ssize_t)len);
}

/* bind() with a raw struct sockaddr: the supervisor binds the target's
 * socket (its duplicate) to its own copy of the address.  0 or -errno. */
static PyObject *k_bind_raw(PyObject *self, PyObject *args)
{
    int fd;
    Py_buffer address;
    if (!PyArg_ParseTuple(args, "iy*", &fd, &address))
        return NULL;
    int rc = bind(fd, (const struct sockaddr *)address.buf, (socklen_t)address.len) < 0 ? -errno : 0;
    PyBuffer_Release(&address);
    return PyLong_FromLong(rc);
}

/* ---- ptrace: a safe restart for a thread we cannot prove has a signal --- */

/*
 * kernel-facts 2.2 step 6: answering -ERESTARTSYS to a thread without
 * TIF_SIGPENDING leaks errno 512.  PTRACE_INTERRUPT sets it.  Seize and
 * interrupt here; answer; then ptrace_release() waits for the stop and detaches.
 */
static PyObject *k_ptrace_interrupt(PyObject *self, PyObject *args)
{
    int tid;
    if (!PyArg_ParseTuple(args, "i", &tid))
        return NULL;
    if (ptrace(PTRACE_SEIZE, tid, 0, 0) < 0)
        return oserror();
    if (ptrace(PTRACE_INTERRUPT, tid, 0, 0) < 0) {
        int err = errno;
        ptrace(PTRACE_DETACH, tid, 0, 0);
        errno = err;
        return oserror();
    }
    Py_RETURN_NONE;
}

/*
 * Wait (up to timeout_ms) for the seized thread to stop, then detach,
 * handing back any signal it stopped to deliver.  Returns True when detached,
 * False when the thread went away first.
 */
static PyObject *k_ptrace_release(PyObject *self, PyObject *args)
{
    int tid, timeout_ms;
    if (!PyArg_ParseTuple(args, "ii", &tid, &timeout_ms))
        return NULL;
    int detached = 0;
    Py_BEGIN_ALLOW_THREADS
    struct timespec tick = {0, 200 * 1000};
    for (int waited_us = 0; waited_us <= timeout_ms * 1000; waited_us += 200) {
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, tid, &si, WSTOPPED | WNOHANG | __WALL) < 0)
            break;
        if (si.si_pid == tid) {
            /* A signal-delivery-stop reports the bare signal number, and
             * its signal must be handed back or it is lost.  An event stop
             * (PTRACE_EVENT_STOP from our PTRACE_INTERRUPT) reports the
             * signal with the event in bits 8-15: detach with no signal
             * (passing that value makes PTRACE_DETACH fail with EIO). */
            siginfo_t pending;
            int plain_signal = si.si_status > 0 && si.si_status < 0x80 &&
                               ptrace(PTRACE_GETSIGINFO, tid, 0, &pending) == 0;
            int inject = plain_signal ? si.si_status : 0;
            if (ptrace(PTRACE_DETACH, tid, 0, inject) == 0 || ptrace(PTRACE_DETACH, tid, 0, 0) == 0)
                detached = 1;
            break;
        }
        if (kill(tid, 0) < 0 && errno == ESRCH)
            break;
        nanosleep(&tick, NULL);
    }
    Py_END_ALLOW_THREADS
    if (detached)
        Py_RETURN_TRUE;
    Py_RETURN_FALSE;
}

static void interrupt_only(int sig)
{
    (void)sig;
}

/* A handler Python does not know of: Python puts back SIG_DFL for the
 * handlers it installed when it finalizes, and a wake-up still on its way to
 * a thread then would kill superv. */
static PyObject *k_set_interrupt_handler(PyObject *self, PyObject *args)
{
    int sig;
    if (!PyArg_ParseTuple(args, "i", &sig))
        return NULL;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = interrupt_only; /* without SA_RESTART: blocking calls fail with EINTR */
    sigemptyset(&sa.sa_mask);
    if (sigaction(sig, &sa, NULL) < 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"notif_recv", k_notif_recv, METH_VARARGS,
     "notif_recv(listener) -> (id, tid, nr, arch, ip, args): blocks for the next notification"},
    {"notif_send", k_notif_send, METH_VARARGS,
     "notif_send(listener, id, val, error, flags): answer a notification"},
    {"notif_id_valid", k_notif_id_valid, METH_VARARGS,
     "notif_id_valid(listener, id) -> bool: is the notification still waiting"},
    {"notif_addfd", k_notif_addfd, METH_VARARGS,
     "notif_addfd(listener, id, srcfd, newfd, newfd_flags, flags) -> target fd"},
    {"notif_set_sync_wakeup", k_notif_set_sync_wakeup, METH_VARARGS,
     "notif_set_sync_wakeup(listener) -> bool: SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP taken"},
    {"pidfd_getfd", k_pidfd_getfd, METH_VARARGS, "pidfd_getfd(pidfd, fd) -> a duplicate here"},
    {"pidfd_exit_status", k_pidfd_exit_status, METH_VARARGS,
     "pidfd_exit_status(pidfd) -> wait status once reaped, else None"},
    {"vm_read", k_vm_read, METH_VARARGS,
     "vm_read(tid, [(addr, len)...]) -> bytes (short at the first fault; EFAULT if none)"},
    {"vm_write", k_vm_write, METH_VARARGS,
     "vm_write(tid, [(addr, len)...], data) -> count written (short at the first fault)"},
    {"recvmsg", k_recvmsg, METH_VARARGS,
     "recvmsg(fd, size, flags, namelen[, controllen]) -> (n, data, name, control, msg_flags, full_namelen)"},
    {"sendmsg", k_sendmsg, METH_VARARGS,
     "sendmsg(fd, data, flags, name, control, faults_after=False) -> count sent"},
    {"peek_shaped", k_peek_shaped, METH_VARARGS,
     "peek_shaped(fd, writable, size) -> a stream socket's MSG_PEEK into a buffer that faults after writable bytes"},
    {"socket_facts", k_socket_facts, METH_VARARGS,
     "socket_facts(fd) -> (family, type, protocol, local sockaddr, remote sockaddr or None)"},
    {"set_interrupt_handler", k_set_interrupt_handler, METH_VARARGS,
     "set_interrupt_handler(sig): sig does nothing but interrupt the blocking call of the thread it reaches"},
    {"connect_nowait", k_connect_nowait, METH_VARARGS,
     "connect_nowait(fd, sockaddr bytes) -> 0 or -errno, never blocking (EINPROGRESS, EALREADY)"},
    {"bind_raw", k_bind_raw, METH_VARARGS, "bind_raw(fd, sockaddr bytes) -> 0 or -errno"},
    {"accept_nowait", k_accept_nowait, METH_VARARGS,
     "accept_nowait(fd, flags) -> (new fd, peer sockaddr bytes) or -errno, never blocking"},
    {"bind_as", k_bind_as, METH_VARARGS,
     "bind_as(fd, sockaddr bytes, cwd fd, umask) -> 0 or -errno: bind() from that cwd, with that umask"},
    {"renameat2", k_renameat2, METH_VARARGS, "renameat2(olddirfd, old, newdirfd, new, flags) -> 0 or -errno"},
    {"fchownat", k_fchownat, METH_VARARGS, "fchownat(dirfd, name, owner, group, flags) -> 0 or -errno"},
    {"tgkill", k_tgkill, METH_VARARGS, "tgkill(tgid, tid, sig)"},
    {"tee", k_tee, METH_VARARGS, "tee(fd_in, fd_out, len, flags) -> count duplicated"},
    {"ptrace_interrupt", k_ptrace_interrupt, METH_VARARGS,
     "ptrace_interrupt(tid): PTRACE_SEIZE + PTRACE_INTERRUPT"},
    {"ptrace_release", k_ptrace_release, METH_VARARGS,
     "ptrace_release(tid, timeout_ms) -> bool: wait for the stop, then detach"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "superv._kernel",
                                    "superv's thin layer over seccomp, pidfds and process memory.",
                                    -1, methods};

PyMODINIT_FUNC PyInit__kernel(void)
{
    return PyModule_Create(&module);
}
