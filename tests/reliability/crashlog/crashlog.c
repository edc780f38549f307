/*
 * crashlog: an LD_PRELOAD shim that logs every call that changes files under a root.
 *
 *   CRASHLOG_ROOT=/abs/dir[:/abs/dir2...] CRASHLOG_OUT=/abs/log LD_PRELOAD=crashlog.so cmd
 *
 * For paths under a root it appends one binary record per successful mutating call, in
 * the order the calls returned, to CRASHLOG_OUT: opens that may create or truncate (and
 * every open of a folder, for its fsync), write/pwrite/writev/pwritev with their bytes and
 * file offset, ftruncate/truncate, fsync/fdatasync (files and folders), syncfs/sync,
 * rename/renameat/renameat2, unlink/unlinkat/rmdir, mkdir/mkdirat, link/linkat, close.
 * Each record goes out in one write(2) to an O_APPEND descriptor, so records of several
 * processes and threads interleave whole, and a killed process leaves whole records.
 * tests/reliability/crashstates.py reads the log and replays it under a persistence model.
 *
 * Records carry the inode of the file a descriptor refers to (fstat), so the replayer
 * needs no descriptor table; the shim keeps one only to know which descriptors are under
 * a root (open/dup/dup2/dup3/fcntl(F_DUPFD*)/close keep it right; a child process finds
 * inherited ones in /proc/self/fd at start).
 *
 * Not logged, by design: writes through a shared mmap (SQLite's -shm index is rebuilt by
 * the first connection after a restart, so it holds nothing durable), chmod/utime/chown
 * (no content), and writes glibc makes internally without going through these symbols
 * (stdio's fwrite, statically linked programs). Calls that would copy data the shim
 * cannot see (sendfile, copy_file_range, fallocate) on a logged descriptor are logged as
 * "unsupported", so a replay that met one fails instead of silently differing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* Record kinds: keep in step with crashstates.py (KINDS). */
enum {
    R_OPEN = 1,
    R_WRITE = 2,
    R_TRUNCATE = 3,
    R_FSYNC = 4,
    R_SYNCALL = 5,
    R_RENAME = 6,
    R_UNLINK = 7,
    R_MKDIR = 8,
    R_LINK = 9,
    R_CLOSE = 10,
    R_UNSUPPORTED = 11,
};

/* One record: this header, then n1 bytes (a path), then n2 bytes (a second path or data).
 * Little-endian, packed: "<IIiiQqqII" in Python's struct. */
struct __attribute__((packed)) rec_head {
    uint32_t len;  /* the whole record, header included */
    uint32_t kind;
    int32_t pid;
    int32_t fd;
    uint64_t ino;  /* the inode acted on (0 when not known) */
    int64_t a;     /* open flags / offset / length / rename flags / 1 for fdatasync */
    int64_t b;     /* open: 1 if the call created the file; unlink: 1 for a folder */
    uint32_t n1;
    uint32_t n2;
};

#define MAX_FDS 65536
#define MAX_ROOTS 8
#define LOG_FD_MIN 900 /* the log descriptor lives high, out of the way of dup2 targets */

static char roots[MAX_ROOTS][PATH_MAX];
static size_t root_lens[MAX_ROOTS];
static int n_roots;
static char log_path[PATH_MAX];
static int log_fd = -1;
static unsigned char tracked[MAX_FDS];

#define REAL(name) static __typeof__(name) *real_##name
REAL(open);
REAL(open64);
REAL(openat);
REAL(openat64);
REAL(creat);
REAL(creat64);
REAL(write);
REAL(pwrite);
REAL(pwrite64);
REAL(writev);
REAL(pwritev);
REAL(pwritev64);
REAL(ftruncate);
REAL(ftruncate64);
REAL(truncate);
REAL(truncate64);
REAL(fsync);
REAL(fdatasync);
REAL(syncfs);
REAL(sync);
REAL(rename);
REAL(renameat);
REAL(renameat2);
REAL(unlink);
REAL(unlinkat);
REAL(rmdir);
REAL(mkdir);
REAL(mkdirat);
REAL(link);
REAL(linkat);
REAL(close);
REAL(dup);
REAL(dup2);
REAL(dup3);
REAL(fcntl);
REAL(fcntl64);
REAL(sendfile);
REAL(sendfile64);
REAL(copy_file_range);
REAL(fallocate);
REAL(fallocate64);
REAL(posix_fallocate);
REAL(posix_fallocate64);
REAL(fopen);
REAL(fopen64);
REAL(fclose);

#define BIND(name) real_##name = (__typeof__(real_##name))dlsym(RTLD_NEXT, #name)
/* Bound on first use too: another library's constructor may open files before ours runs. */
static int bound;
static int bind_all(void);
#define R(name) ((void)(bound || bind_all()), real_##name)

#define STDIO 2 /* tracked[fd]: 1 a descriptor, STDIO one under a FILE stream */

static int tracked_fd(int fd) {
    return fd >= 0 && fd < MAX_FDS && fd != log_fd ? tracked[fd] : 0;
}

static void set_tracked(int fd, int on) {
    if (fd >= 0 && fd < MAX_FDS) tracked[fd] = (unsigned char)on;
}

/* Lexically normalise an absolute path in place: no ".", "..", or repeated "/". */
static void normalise(char *path) {
    char out[PATH_MAX];
    size_t o = 0;
    const char *p = path;
    while (*p) {
        while (*p == '/') p++;
        if (!*p) break;
        const char *end = strchr(p, '/');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 1 && p[0] == '.') {
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] != '/') o--;
            if (o > 0) o--;
        } else if (o + 1 + n < sizeof out) {
            out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p += n;
    }
    if (o == 0) out[o++] = '/';
    out[o] = 0;
    memcpy(path, out, o + 1);
}

/* The absolute path of `path` seen from `dirfd` (AT_FDCWD: the working folder); 0 if none. */
static int absolute(int dirfd, const char *path, char *out) {
    if (!path) return 0;
    if (path[0] == '/') {
        snprintf(out, PATH_MAX, "%s", path);
    } else {
        char base[PATH_MAX];
        if (dirfd == AT_FDCWD) {
            if (!getcwd(base, sizeof base)) return 0;
        } else {
            char link[64];
            snprintf(link, sizeof link, "/proc/self/fd/%d", dirfd);
            ssize_t n = readlink(link, base, sizeof base - 1);
            if (n <= 0) return 0;
            base[n] = 0;
        }
        if ((size_t)snprintf(out, PATH_MAX, "%s/%s", base, path) >= PATH_MAX) return 0;
    }
    normalise(out);
    return 1;
}

static int under_root(const char *abs) {
    for (int i = 0; i < n_roots; i++) {
        size_t n = root_lens[i];
        if (strncmp(abs, roots[i], n) == 0 && (abs[n] == 0 || abs[n] == '/')) return 1;
    }
    return 0;
}

/* The absolute path if `path` (from `dirfd`) is under a root, else 0. */
static int mine(int dirfd, const char *path, char *out) {
    return n_roots > 0 && absolute(dirfd, path, out) && under_root(out);
}

static uint64_t fd_ino(int fd) {
    struct stat st;
    return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static uint64_t path_ino(const char *abs) {
    struct stat st;
    return lstat(abs, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static void open_log(void) {
    if (log_fd >= 0 || !log_path[0]) return;
    int fd = (int)syscall(SYS_open, log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return;
    int high = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, LOG_FD_MIN);
    if (high >= 0) {
        syscall(SYS_close, fd);
        fd = high;
    }
    log_fd = fd;
}

/* Append one record (one write(2), O_APPEND: records never interleave). */
static void emit(uint32_t kind, int fd, uint64_t ino, int64_t a, int64_t b, const char *p1,
                 const void *d2, size_t n2) {
    int saved = errno;
    open_log();
    if (log_fd < 0) {
        errno = saved;
        return;
    }
    size_t n1 = p1 ? strlen(p1) : 0;
    size_t len = sizeof(struct rec_head) + n1 + n2;
    char stack[8192];
    char *buf = len <= sizeof stack ? stack : malloc(len);
    if (!buf) {
        fprintf(stderr, "crashlog: out of memory for a %zu-byte record\n", len);
        abort();
    }
    struct rec_head h = {(uint32_t)len, kind, (int32_t)getpid(), fd, ino, a, b,
                         (uint32_t)n1, (uint32_t)n2};
    memcpy(buf, &h, sizeof h);
    if (n1) memcpy(buf + sizeof h, p1, n1);
    if (n2) memcpy(buf + sizeof h + n1, d2, n2);
    ssize_t put = syscall(SYS_write, log_fd, buf, len);
    if (put != (ssize_t)len) {
        /* A log with a record missing would replay into a wrong image: stop loudly. */
        fprintf(stderr, "crashlog: writing the log failed (%zd of %zu bytes)\n", put, len);
        abort();
    }
    if (buf != stack) free(buf);
    errno = saved;
}

static int bind_all(void) {
    BIND(open); BIND(open64); BIND(openat); BIND(openat64); BIND(creat); BIND(creat64);
    BIND(write); BIND(pwrite); BIND(pwrite64); BIND(writev); BIND(pwritev); BIND(pwritev64);
    BIND(ftruncate); BIND(ftruncate64); BIND(truncate); BIND(truncate64);
    BIND(fsync); BIND(fdatasync); BIND(syncfs); BIND(sync);
    BIND(rename); BIND(renameat); BIND(renameat2); BIND(unlink); BIND(unlinkat); BIND(rmdir);
    BIND(mkdir); BIND(mkdirat); BIND(link); BIND(linkat);
    BIND(close); BIND(dup); BIND(dup2); BIND(dup3); BIND(fcntl); BIND(fcntl64);
    BIND(sendfile); BIND(sendfile64); BIND(copy_file_range);
    BIND(fallocate); BIND(fallocate64); BIND(posix_fallocate); BIND(posix_fallocate64);
    BIND(fopen); BIND(fopen64); BIND(fclose);
    bound = 1;
    return 1;
}

__attribute__((constructor)) static void crashlog_init(void) {
    if (!bound) bind_all();

    const char *out = getenv("CRASHLOG_OUT");
    const char *root = getenv("CRASHLOG_ROOT");
    if (!out || !root || !*out || !*root) return;
    snprintf(log_path, sizeof log_path, "%s", out);
    char copy[PATH_MAX * 2];
    snprintf(copy, sizeof copy, "%s", root);
    for (char *save = NULL, *tok = strtok_r(copy, ":", &save); tok && n_roots < MAX_ROOTS;
         tok = strtok_r(NULL, ":", &save)) {
        snprintf(roots[n_roots], PATH_MAX, "%s", tok);
        normalise(roots[n_roots]);
        root_lens[n_roots] = strlen(roots[n_roots]);
        n_roots++;
    }
    /* Descriptors inherited from a parent (a child process): track those under a root. */
    for (int fd = 0; fd < 256; fd++) {
        char link[64], target[PATH_MAX];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, target, sizeof target - 1);
        if (n <= 0 || target[0] != '/') continue;
        target[n] = 0;
        if (under_root(target)) set_tracked(fd, 1);
    }
}

/* --- opening --------------------------------------------------------------------------- */

static int after_open(int dirfd, const char *path, int flags, int existed_known, int existed,
                      int fd) {
    char abs[PATH_MAX];
    if (fd < 0 || !mine(dirfd, path, abs)) return fd;
    set_tracked(fd, 1);
    if (flags & (O_CREAT | O_TRUNC | O_DIRECTORY) || (flags & O_ACCMODE) != O_RDONLY) {
        int created = existed_known && !existed;
        emit(R_OPEN, fd, fd_ino(fd), flags, created, abs, NULL, 0);
    } else {
        struct stat st;  /* a folder opened O_RDONLY without O_DIRECTORY (SQLite's dir sync) */
        if (fstat(fd, &st) == 0 && S_ISDIR(st.st_mode))
            emit(R_OPEN, fd, (uint64_t)st.st_ino, flags, 0, abs, NULL, 0);
    }
    return fd;
}

/* Whether `path` exists before an O_CREAT open, so the log says if the open created it. */
static int exists_at(int dirfd, const char *path) {
    struct stat st;
    return fstatat(dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

#define OPEN_BODY(call, dirfd)                                                   \
    mode_t mode = 0;                                                             \
    if (flags & (O_CREAT | __O_TMPFILE)) {                                       \
        va_list ap;                                                              \
        va_start(ap, flags);                                                     \
        mode = (mode_t)va_arg(ap, int);                                          \
        va_end(ap);                                                              \
    }                                                                            \
    int existed = (flags & O_CREAT) && n_roots ? exists_at(dirfd, path) : 1;     \
    int fd = call;                                                               \
    return after_open(dirfd, path, flags, (flags & O_CREAT) != 0, existed, fd);

int open(const char *path, int flags, ...) { OPEN_BODY(R(open)(path, flags, mode), AT_FDCWD) }
int open64(const char *path, int flags, ...) {
    OPEN_BODY(R(open64)(path, flags, mode), AT_FDCWD)
}
int openat(int dirfd, const char *path, int flags, ...) {
    OPEN_BODY(R(openat)(dirfd, path, flags, mode), dirfd)
}
int openat64(int dirfd, const char *path, int flags, ...) {
    OPEN_BODY(R(openat64)(dirfd, path, flags, mode), dirfd)
}
/* _FORTIFY_SOURCE's variants (no mode: they refuse O_CREAT). */
int __open_2(const char *path, int flags) { return open(path, flags); }
int __open64_2(const char *path, int flags) { return open64(path, flags); }
int __openat_2(int dirfd, const char *path, int flags) { return openat(dirfd, path, flags); }
int __openat64_2(int dirfd, const char *path, int flags) { return openat64(dirfd, path, flags); }

int creat(const char *path, mode_t mode) { return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode); }
int creat64(const char *path, mode_t mode) {
    return open64(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* --- writing --------------------------------------------------------------------------- */

static void log_write(int fd, const void *buf, ssize_t n, off_t at) {
    if (n > 0) emit(R_WRITE, fd, fd_ino(fd), at, 0, NULL, buf, (size_t)n);
}

ssize_t write(int fd, const void *buf, size_t count) {
    ssize_t n = R(write)(fd, buf, count);
    if (n > 0 && tracked_fd(fd)) {
        /* The position after the write, less what was written: right for O_APPEND too. */
        off_t end = lseek(fd, 0, SEEK_CUR);
        log_write(fd, buf, n, end - n);
    }
    return n;
}

ssize_t pwrite(int fd, const void *buf, size_t count, off_t offset) {
    ssize_t n = R(pwrite)(fd, buf, count, offset);
    if (tracked_fd(fd)) log_write(fd, buf, n, offset);
    return n;
}

ssize_t pwrite64(int fd, const void *buf, size_t count, off64_t offset) {
    ssize_t n = R(pwrite64)(fd, buf, count, offset);
    if (tracked_fd(fd)) log_write(fd, buf, n, offset);
    return n;
}

/* writev/pwritev: one record with the bytes written, gathered. */
static void log_writev(int fd, const struct iovec *iov, int cnt, ssize_t n, off_t at) {
    if (n <= 0) return;
    char *all = malloc((size_t)n);
    if (!all) abort();
    size_t got = 0;
    for (int i = 0; i < cnt && got < (size_t)n; i++) {
        size_t take = iov[i].iov_len < (size_t)n - got ? iov[i].iov_len : (size_t)n - got;
        memcpy(all + got, iov[i].iov_base, take);
        got += take;
    }
    log_write(fd, all, n, at);
    free(all);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    ssize_t n = R(writev)(fd, iov, cnt);
    if (n > 0 && tracked_fd(fd)) log_writev(fd, iov, cnt, n, lseek(fd, 0, SEEK_CUR) - n);
    return n;
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t offset) {
    ssize_t n = R(pwritev)(fd, iov, cnt, offset);
    if (tracked_fd(fd)) log_writev(fd, iov, cnt, n, offset);
    return n;
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t offset) {
    ssize_t n = R(pwritev64)(fd, iov, cnt, offset);
    if (tracked_fd(fd)) log_writev(fd, iov, cnt, n, offset);
    return n;
}

int ftruncate(int fd, off_t length) {
    int rc = R(ftruncate)(fd, length);
    if (rc == 0 && tracked_fd(fd)) emit(R_TRUNCATE, fd, fd_ino(fd), length, 0, NULL, NULL, 0);
    return rc;
}

int ftruncate64(int fd, off64_t length) {
    int rc = R(ftruncate64)(fd, length);
    if (rc == 0 && tracked_fd(fd)) emit(R_TRUNCATE, fd, fd_ino(fd), length, 0, NULL, NULL, 0);
    return rc;
}

static int log_truncate(int rc, const char *path, off64_t length) {
    char abs[PATH_MAX];
    if (rc == 0 && mine(AT_FDCWD, path, abs))
        emit(R_TRUNCATE, -1, path_ino(abs), length, 0, abs, NULL, 0);
    return rc;
}

int truncate(const char *path, off_t length) {
    return log_truncate(R(truncate)(path, length), path, length);
}

int truncate64(const char *path, off64_t length) {
    return log_truncate(R(truncate64)(path, length), path, length);
}

/* stdio streams (the assembler and linker write their output through them): glibc's fwrite
 * reaches write(2) inside libc, out of the shim's sight, so a stream's bytes are logged as
 * the whole file's content when it is synced or closed ("the file now holds this"). */
static void log_content(int fd) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    int rfd = (int)syscall(SYS_open, link, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (rfd < 0 || fstat(rfd, &st) != 0) {
        fprintf(stderr, "crashlog: cannot read back a stream's file (%s)\n", link);
        abort();
    }
    char *buf = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buf) abort();
    off_t got = 0;
    while (got < st.st_size) {
        ssize_t n = (ssize_t)syscall(SYS_pread64, rfd, buf + got, (size_t)(st.st_size - got), got);
        if (n <= 0) break;
        got += n;
    }
    syscall(SYS_close, rfd);
    emit(R_WRITE, fd, (uint64_t)st.st_ino, 0, 0, NULL, buf, (size_t)got);
    emit(R_TRUNCATE, fd, (uint64_t)st.st_ino, got, 0, NULL, NULL, 0);
    free(buf);
}

static int stream_flags(const char *mode) {
    int plus = strchr(mode, '+') != NULL;
    switch (mode[0]) {
    case 'w': return (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_TRUNC;
    case 'a': return (plus ? O_RDWR : O_WRONLY) | O_CREAT | O_APPEND;
    default: return plus ? O_RDWR : O_RDONLY;
    }
}

static FILE *after_fopen(const char *path, const char *mode, int existed, FILE *f) {
    int flags = stream_flags(mode);
    if (f && (flags & O_ACCMODE) != O_RDONLY) {
        int fd = fileno(f);
        after_open(AT_FDCWD, path, flags, (flags & O_CREAT) != 0, existed, fd);
        if (tracked_fd(fd)) set_tracked(fd, STDIO);
    }
    return f;
}

FILE *fopen(const char *path, const char *mode) {
    int existed = n_roots ? exists_at(AT_FDCWD, path) : 1;
    return after_fopen(path, mode, existed, R(fopen)(path, mode));
}

FILE *fopen64(const char *path, const char *mode) {
    int existed = n_roots ? exists_at(AT_FDCWD, path) : 1;
    return after_fopen(path, mode, existed, R(fopen64)(path, mode));
}

int fclose(FILE *f) {
    int fd = f ? fileno(f) : -1;
    int was = tracked_fd(fd);
    if (!was) return R(fclose)(f);
    uint64_t ino = fd_ino(fd);
    if (was == STDIO) {
        fflush(f);
        log_content(fd);
    }
    int rc = R(fclose)(f); /* closes the descriptor inside libc: no close() of ours */
    set_tracked(fd, 0);
    emit(R_CLOSE, fd, ino, 0, 0, NULL, NULL, 0);
    return rc;
}

/* --- syncing --------------------------------------------------------------------------- */

int fsync(int fd) {
    if (tracked_fd(fd) == STDIO) log_content(fd);
    int rc = R(fsync)(fd);
    if (rc == 0 && tracked_fd(fd)) emit(R_FSYNC, fd, fd_ino(fd), 0, 0, NULL, NULL, 0);
    return rc;
}

int fdatasync(int fd) {
    if (tracked_fd(fd) == STDIO) log_content(fd);
    int rc = R(fdatasync)(fd);
    if (rc == 0 && tracked_fd(fd)) emit(R_FSYNC, fd, fd_ino(fd), 1, 0, NULL, NULL, 0);
    return rc;
}

/* syncfs of any descriptor: the roots are taken to be on one file system. */
int syncfs(int fd) {
    int rc = R(syncfs)(fd);
    if (rc == 0 && n_roots) emit(R_SYNCALL, fd, 0, 0, 0, NULL, NULL, 0);
    return rc;
}

void sync(void) {
    R(sync)();
    if (n_roots) emit(R_SYNCALL, -1, 0, 0, 0, NULL, NULL, 0);
}

/* --- names ----------------------------------------------------------------------------- */

static int log_rename(int rc, int olddir, const char *old, int newdir, const char *new_,
                      unsigned flags) {
    char a[PATH_MAX], b[PATH_MAX];
    if (rc != 0 || !n_roots) return rc;
    int m1 = absolute(olddir, old, a) && under_root(a);
    int m2 = absolute(newdir, new_, b) && under_root(b);
    if (m1 || m2)
        emit(R_RENAME, -1, path_ino(b), flags, 0, m1 ? a : "", m2 ? b : "", m2 ? strlen(b) : 0);
    return rc;
}

int rename(const char *old, const char *new_) {
    return log_rename(R(rename)(old, new_), AT_FDCWD, old, AT_FDCWD, new_, 0);
}

int renameat(int olddir, const char *old, int newdir, const char *new_) {
    return log_rename(R(renameat)(olddir, old, newdir, new_), olddir, old, newdir, new_, 0);
}

int renameat2(int olddir, const char *old, int newdir, const char *new_, unsigned flags) {
    int rc = R(renameat2)(olddir, old, newdir, new_, flags);
    return log_rename(rc, olddir, old, newdir, new_, flags);
}

static int log_unlink(int rc, int dirfd, const char *path, int is_dir) {
    char abs[PATH_MAX];
    if (rc == 0 && mine(dirfd, path, abs)) emit(R_UNLINK, -1, 0, 0, is_dir, abs, NULL, 0);
    return rc;
}

int unlink(const char *path) { return log_unlink(R(unlink)(path), AT_FDCWD, path, 0); }

int unlinkat(int dirfd, const char *path, int flags) {
    int rc = R(unlinkat)(dirfd, path, flags);
    return log_unlink(rc, dirfd, path, (flags & AT_REMOVEDIR) != 0);
}

int rmdir(const char *path) { return log_unlink(R(rmdir)(path), AT_FDCWD, path, 1); }

static int log_mkdir(int rc, int dirfd, const char *path) {
    char abs[PATH_MAX];
    if (rc == 0 && mine(dirfd, path, abs)) emit(R_MKDIR, -1, path_ino(abs), 0, 0, abs, NULL, 0);
    return rc;
}

int mkdir(const char *path, mode_t mode) {
    return log_mkdir(R(mkdir)(path, mode), AT_FDCWD, path);
}

int mkdirat(int dirfd, const char *path, mode_t mode) {
    return log_mkdir(R(mkdirat)(dirfd, path, mode), dirfd, path);
}

static int log_link(int rc, int olddir, const char *old, int newdir, const char *new_) {
    char a[PATH_MAX], b[PATH_MAX];
    if (rc == 0 && mine(newdir, new_, b)) {
        if (!absolute(olddir, old, a)) a[0] = 0;
        emit(R_LINK, -1, path_ino(b), 0, 0, a, b, strlen(b));
    }
    return rc;
}

int link(const char *old, const char *new_) {
    return log_link(R(link)(old, new_), AT_FDCWD, old, AT_FDCWD, new_);
}

int linkat(int olddir, const char *old, int newdir, const char *new_, int flags) {
    return log_link(R(linkat)(olddir, old, newdir, new_, flags), olddir, old, newdir, new_);
}

/* --- descriptors ----------------------------------------------------------------------- */

int close(int fd) {
    if (fd == log_fd && fd >= 0) {
        /* A child closing every descriptor before exec: let it, reopen on the next record. */
        log_fd = -1;
        return R(close)(fd);
    }
    int was = tracked_fd(fd);
    uint64_t ino = was ? fd_ino(fd) : 0;
    int rc = R(close)(fd);
    if (was) {
        set_tracked(fd, 0);
        emit(R_CLOSE, fd, ino, 0, 0, NULL, NULL, 0);
    }
    return rc;
}

/* Keep the log descriptor out of the way of a dup2/dup3 onto its number. */
static void move_log_from(int fd) {
    if (fd == log_fd && fd >= 0) {
        int high = (int)syscall(SYS_fcntl, fd, F_DUPFD_CLOEXEC, fd + 1);
        log_fd = high >= 0 ? high : -1;
    }
}

int dup(int fd) {
    int nfd = R(dup)(fd);
    if (nfd >= 0) set_tracked(nfd, tracked_fd(fd));
    return nfd;
}

int dup2(int fd, int nfd) {
    move_log_from(nfd);
    int rc = R(dup2)(fd, nfd);
    if (rc >= 0) set_tracked(rc, tracked_fd(fd));
    return rc;
}

int dup3(int fd, int nfd, int flags) {
    move_log_from(nfd);
    int rc = R(dup3)(fd, nfd, flags);
    if (rc >= 0) set_tracked(rc, tracked_fd(fd));
    return rc;
}

static int after_fcntl(int fd, int cmd, int rc) {
    if (rc >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC)) set_tracked(rc, tracked_fd(fd));
    return rc;
}

int fcntl(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *); /* int or pointer: both pass in one register */
    va_end(ap);
    return after_fcntl(fd, cmd, R(fcntl)(fd, cmd, arg));
}

int fcntl64(int fd, int cmd, ...) {
    va_list ap;
    va_start(ap, cmd);
    void *arg = va_arg(ap, void *);
    va_end(ap);
    return after_fcntl(fd, cmd, (R(fcntl64) ? real_fcntl64 : real_fcntl)(fd, cmd, arg));
}

/* --- copies the shim cannot see into ----------------------------------------------------- */

static void unsupported(int fd, const char *what) {
    if (tracked_fd(fd)) emit(R_UNSUPPORTED, fd, fd_ino(fd), 0, 0, what, NULL, 0);
}

ssize_t sendfile(int out, int in, off_t *offset, size_t count) {
    unsupported(out, "sendfile");
    return R(sendfile)(out, in, offset, count);
}

ssize_t sendfile64(int out, int in, off64_t *offset, size_t count) {
    unsupported(out, "sendfile");
    return R(sendfile64)(out, in, offset, count);
}

ssize_t copy_file_range(int in, off64_t *in_off, int out, off64_t *out_off, size_t n,
                        unsigned flags) {
    unsupported(out, "copy_file_range");
    return R(copy_file_range)(in, in_off, out, out_off, n, flags);
}

int fallocate(int fd, int mode, off_t offset, off_t len) {
    unsupported(fd, "fallocate");
    return R(fallocate)(fd, mode, offset, len);
}

int fallocate64(int fd, int mode, off64_t offset, off64_t len) {
    unsupported(fd, "fallocate");
    return R(fallocate64)(fd, mode, offset, len);
}

int posix_fallocate(int fd, off_t offset, off_t len) {
    unsupported(fd, "posix_fallocate");
    return R(posix_fallocate)(fd, offset, len);
}

int posix_fallocate64(int fd, off64_t offset, off64_t len) {
    unsupported(fd, "posix_fallocate");
    return R(posix_fallocate64)(fd, offset, len);
}
