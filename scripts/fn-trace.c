/* fn-trace: list the functions each process of a program runs, in the order
 * they first run.
 *
 *   fn-trace SYMS OUT PROGRAM [ARGS...]
 *
 * SYMS lists the program's functions, one "HEXADDR NAME" per line (link-time
 * addresses, as `nm` prints them).  fn-trace runs PROGRAM under ptrace and,
 * once PROGRAM has been exec'd, writes an int3 over the first byte of every
 * listed function.  It follows the processes PROGRAM forks (and their
 * threads); a forked process gets every breakpoint again, so each process
 * reports all the functions it runs.  OUT gets one line per event:
 *
 *   fork PARENT CHILD      a traced process forked (pids as fn-trace sees them)
 *   PID NAME               process PID entered function NAME for the first time
 *
 * A traced process that exec's another program (the container init exec'ing
 * the container's process, a hook) is detached.  fn-trace exits with
 * PROGRAM's status.  Used by scripts/gen-link-order.sh.  x86-64 Linux only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <unistd.h>

struct fn {
    uint64_t addr;  /* runtime address */
    char *name;
    unsigned char orig;
};

static struct fn *fns;
static size_t nfns;

/* traced tasks: a fork gets its own hit set, a thread shares its process's */
struct task {
    pid_t pid;
    pid_t tgid;             /* the process whose hit set it uses */
    int started;            /* its initial stop has been seen */
    int rearm;              /* a forked process whose breakpoints need writing */
    unsigned char *hit;     /* per function, for tgid == pid */
};
static struct task tasks[4096];
static size_t ntasks;

static struct task *task(pid_t pid)
{
    for (size_t i = 0; i < ntasks; i++)
        if (tasks[i].pid == pid) return &tasks[i];
    if (ntasks == sizeof tasks / sizeof *tasks) {
        fprintf(stderr, "fn-trace: too many tasks\n");
        exit(125);
    }
    struct task *t = &tasks[ntasks++];
    memset(t, 0, sizeof *t);
    t->pid = pid;
    t->tgid = pid;
    return t;
}

static int cmp_addr(const void *a, const void *b)
{
    const struct fn *x = a, *y = b;
    return x->addr < y->addr ? -1 : x->addr > y->addr;
}

/* index of the first function at addr, or -1 */
static long lookup(uint64_t addr)
{
    size_t lo = 0, hi = nfns;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (fns[mid].addr < addr) lo = mid + 1;
        else hi = mid;
    }
    return lo < nfns && fns[lo].addr == addr ? (long)lo : -1;
}

static void die(const char *what)
{
    perror(what);
    exit(125);
}

/* the lowest address the program's file is mapped at minus its file offset:
 * the load bias of a PIE (linked at 0) */
static uint64_t lowest_mapping(pid_t pid)
{
    char path[64], exe[4096], line[8192];
    snprintf(path, sizeof path, "/proc/%d/exe", pid);
    ssize_t n = readlink(path, exe, sizeof exe - 1);
    if (n < 0) die("readlink exe");
    exe[n] = 0;
    snprintf(path, sizeof path, "/proc/%d/maps", pid);
    FILE *f = fopen(path, "r");
    if (!f) die("maps");
    uint64_t lo = UINT64_MAX;
    while (fgets(line, sizeof line, f)) {
        unsigned long long start, end, off;
        char *p = strchr(line, '/');
        if (!p) continue;
        p[strcspn(p, "\n")] = 0;
        if (strcmp(p, exe) != 0) continue;
        if (sscanf(line, "%llx-%llx %*s %llx", &start, &end, &off) != 3) continue;
        if (start - off < lo) lo = start - off;
    }
    fclose(f);
    if (lo == UINT64_MAX) {
        fprintf(stderr, "fn-trace: the program is not mapped in %d\n", pid);
        exit(125);
    }
    return lo;
}

static int poke_byte(pid_t pid, uint64_t addr, unsigned char b, unsigned char *old)
{
    errno = 0;
    long w = ptrace(PTRACE_PEEKTEXT, pid, (void *)addr, 0);
    if (errno) return -1;
    if (old) *old = (unsigned char)w;
    w = (w & ~0xffL) | b;
    return ptrace(PTRACE_POKETEXT, pid, (void *)addr, (void *)w) < 0 ? -1 : 0;
}

/* write every breakpoint into pid's memory */
static void arm(pid_t pid, int save)
{
    for (size_t i = 0; i < nfns; i++) {
        if (i && fns[i].addr == fns[i - 1].addr) {
            fns[i].orig = fns[i - 1].orig;
            continue;
        }
        if (poke_byte(pid, fns[i].addr, 0xcc, save ? &fns[i].orig : NULL) < 0) {
            fprintf(stderr, "fn-trace: cannot write at %#llx (%s) in %d\n",
                    (unsigned long long)fns[i].addr, fns[i].name, pid);
            exit(125);
        }
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: fn-trace SYMS OUT PROGRAM [ARGS...]\n");
        return 125;
    }
    FILE *sf = fopen(argv[1], "r");
    if (!sf) die(argv[1]);
    size_t cap = 0;
    char line[8192];
    uint64_t maxaddr = 0;
    while (fgets(line, sizeof line, sf)) {
        unsigned long long a;
        char name[8000];
        if (sscanf(line, "%llx %7999s", &a, name) != 2) continue;
        if (nfns == cap) {
            cap = cap ? 2 * cap : 4096;
            fns = realloc(fns, cap * sizeof *fns);
            if (!fns) die("realloc");
        }
        fns[nfns].addr = a;
        fns[nfns].name = strdup(name);
        if (a > maxaddr) maxaddr = a;
        nfns++;
    }
    fclose(sf);
    if (!nfns) {
        fprintf(stderr, "fn-trace: no functions in %s\n", argv[1]);
        return 125;
    }
    FILE *out = fopen(argv[2], "w");
    if (!out) die(argv[2]);

    pid_t root = fork();
    if (root < 0) die("fork");
    if (root == 0) {
        if (ptrace(PTRACE_TRACEME, 0, 0, 0) < 0) die("PTRACE_TRACEME");
        execvp(argv[3], argv + 3);
        die(argv[3]);
    }
    int st;
    if (waitpid(root, &st, 0) < 0 || !WIFSTOPPED(st)) die("exec stop");
    uint64_t low = lowest_mapping(root);
    if (maxaddr < low)  /* a PIE: nm's addresses are offsets from the bias */
        for (size_t i = 0; i < nfns; i++) fns[i].addr += low;
    qsort(fns, nfns, sizeof *fns, cmp_addr);
    arm(root, 1);
    struct task *rt = task(root);
    rt->started = 1;
    rt->hit = calloc(nfns, 1);
    if (ptrace(PTRACE_SETOPTIONS, root, 0,
               PTRACE_O_TRACECLONE | PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK |
                   PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL) < 0)
        die("PTRACE_SETOPTIONS");
    if (ptrace(PTRACE_CONT, root, 0, 0) < 0) die("PTRACE_CONT");

    int status = 125;
    size_t distinct = 0;
    unsigned char *any = calloc(nfns, 1);
    for (;;) {
        pid_t pid = waitpid(-1, &st, __WALL);
        if (pid < 0) {
            if (errno == EINTR) continue;
            if (errno == ECHILD) break;
            die("waitpid");
        }
        if (WIFEXITED(st) || WIFSIGNALED(st)) {
            if (pid == root)
                status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            continue;
        }
        if (!WIFSTOPPED(st)) continue;
        struct task *t = task(pid);
        int sig = WSTOPSIG(st), event = st >> 16;
        if (event == PTRACE_EVENT_EXEC) {
            ptrace(PTRACE_DETACH, pid, 0, 0);
            continue;
        }
        if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK || event == PTRACE_EVENT_CLONE) {
            unsigned long child;
            ptrace(PTRACE_GETEVENTMSG, pid, 0, &child);
            struct task *c = task((pid_t)child);
            if (event == PTRACE_EVENT_CLONE) {
                /* a thread (CLONE_VM): shares the memory and hit set */
                c->tgid = t->tgid;
            } else if (event == PTRACE_EVENT_FORK) {
                /* its own copy of memory: rearm when it first stops */
                c->rearm = 1;
                c->hit = calloc(nfns, 1);
                fprintf(out, "fork %d %d\n", t->tgid, c->pid);
            } else {
                /* vfork: shares the memory until it exec's */
                c->tgid = t->tgid;
            }
            if (c->started) {
                /* it stopped first and waited for this event */
                if (c->rearm) arm(c->pid, 0);
                c->rearm = 0;
                ptrace(PTRACE_CONT, c->pid, 0, 0);
            }
            ptrace(PTRACE_CONT, pid, 0, 0);
            continue;
        }
        if (!t->started) {
            /* a new task's initial SIGSTOP (its parent's event may come later) */
            t->started = 1;
            if (sig == SIGSTOP) {
                if (t->rearm) {
                    arm(pid, 0);
                    t->rearm = 0;
                    ptrace(PTRACE_CONT, pid, 0, 0);
                }
                /* else: wait for the parent's event, which says fork or thread */
                else if (t->tgid != pid || t->hit)
                    ptrace(PTRACE_CONT, pid, 0, 0);
                continue;
            }
        }
        if (sig == SIGTRAP) {
            siginfo_t si;
            struct user_regs_struct regs;
            if (ptrace(PTRACE_GETSIGINFO, pid, 0, &si) == 0 && si.si_code == 0x80 /* SI_KERNEL: int3 */ &&
                ptrace(PTRACE_GETREGS, pid, 0, &regs) == 0) {
                long i = lookup(regs.rip - 1);
                if (i >= 0) {
                    poke_byte(pid, fns[i].addr, fns[i].orig, NULL);
                    regs.rip -= 1;
                    ptrace(PTRACE_SETREGS, pid, 0, &regs);
                    struct task *p = task(t->tgid);
                    if (!p->hit) p->hit = calloc(nfns, 1);
                    for (long j = i; j < (long)nfns && fns[j].addr == fns[i].addr; j++) {
                        if (!p->hit[j]) {
                            p->hit[j] = 1;
                            fprintf(out, "%d %s\n", p->pid, fns[j].name);
                        }
                        if (!any[j]) {
                            any[j] = 1;
                            distinct++;
                        }
                    }
                    ptrace(PTRACE_CONT, pid, 0, 0);
                    continue;
                }
            }
        }
        ptrace(PTRACE_CONT, pid, 0, (void *)(long)sig);
    }
    fclose(out);
    fprintf(stderr, "fn-trace: %zu of %zu functions ran\n", distinct, nfns);
    return status;
}
