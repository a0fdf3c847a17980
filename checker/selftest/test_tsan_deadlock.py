"""ThreadSanitizer reports and hang diagnosis (harness/tsan.py, harness/deadlock.py) on
small programs whose bugs are known: a data race, a lock-order inversion, a mutex locked
twice and two threads in ABBA order. Built with g++ (plain and TSan) and, if present,
clang++ (TSan)."""
import concurrent.futures
import os
import pathlib
import shutil
import subprocess
import time

import pytest

from checker.harness import (T, CannotCheck, diagnose_hang, is_mapping_failure, parse_reports, read_reports,
                     run, run_tsan, spawn, start_tsan_server, thread_states, tsan_env, wait_until)
from checker.harness import deadlock
from checker.harness.procs import kill_group

PROGRAM = r"""
// A data race, a lock-order inversion (one order after the other: nothing hangs),
// a mutex locked twice (hangs) and two threads in ABBA order behind a barrier (hang).
#include <barrier>
#include <cstdio>
#include <cstring>
#include <mutex>
#include <thread>

long counter = 0;
std::mutex table_mutex, ma, mb;
std::barrier<> both_hold_one(2);

void bump() {
    counter = counter + 1;                              // RACE-WRITE
}

void peek(long* out) {
    long seen = counter;                                // RACE-READ
    *out = seen;
}

void take_ab() {
    std::lock_guard<std::mutex> first(ma);              // AB-FIRST
    std::lock_guard<std::mutex> second(mb);             // AB-SECOND
}

void take_ba() {
    std::lock_guard<std::mutex> first(mb);              // BA-FIRST
    std::lock_guard<std::mutex> second(ma);             // BA-SECOND
}

void lock_twice() {
    std::lock_guard<std::mutex> once(table_mutex);
    std::lock_guard<std::mutex> again(table_mutex);     // SELF-LOCK
}

void hold_a_then_b() {
    std::lock_guard<std::mutex> first(ma);
    both_hold_one.arrive_and_wait();
    std::lock_guard<std::mutex> second(mb);             // ABBA-1
}

void hold_b_then_a() {
    std::lock_guard<std::mutex> first(mb);
    both_hold_one.arrive_and_wait();
    std::lock_guard<std::mutex> second(ma);             // ABBA-2
}

int main(int argc, char** argv) {
    const char* mode = argc > 1 ? argv[1] : "";
    if (std::strcmp(mode, "race") == 0) {
        long seen = 0;
        std::thread a(bump), b(peek, &seen);
        a.join();
        b.join();
        std::printf("%ld\n", seen);
    } else if (std::strcmp(mode, "lock-order") == 0) {
        std::thread a(take_ab);
        a.join();
        std::thread b(take_ba);
        b.join();
    } else if (std::strcmp(mode, "self-lock") == 0) {
        std::thread t(lock_twice);
        t.join();
    } else if (std::strcmp(mode, "abba") == 0) {
        std::thread a(hold_a_then_b), b(hold_b_then_a);
        a.join();
        b.join();
    } else {
        std::fprintf(stderr, "usage: %s race|lock-order|self-lock|abba\n", argv[0]);
        return 2;
    }
}
"""

# Real reports, as printed on Debian 12: g++ 12 (libtsan.so.2; the binary is called
# race-g++, so its frames end in "(race-g+++0x1266)") and clang++ 14 (columns, BuildIds,
# headers under /usr/bin/../lib/gcc/…), both with second_deadlock_stack=1.
GCC_RACE = r"""
==================
WARNING: ThreadSanitizer: data race (pid=8689)
  Read of size 8 at 0x5585856e7088 by thread T2:
    #0 reader(long*) /tmp/tsx/race.cc:5 (race-g+++0x1266)
    #1 void std::__invoke_impl<void, void (*)(long*), long*>(std::__invoke_other, void (*&&)(long*), long*&&) /usr/include/c++/12/bits/invoke.h:61 (race-g+++0x1512)
    #2 std::__invoke_result<void (*)(long*), long*>::type std::__invoke<void (*)(long*), long*>(void (*&&)(long*), long*&&) /usr/include/c++/12/bits/invoke.h:96 (race-g+++0x1512)
    #3 void std::thread::_Invoker<std::tuple<void (*)(long*), long*> >::_M_invoke<0ul, 1ul>(std::_Index_tuple<0ul, 1ul>) /usr/include/c++/12/bits/std_thread.h:252 (race-g+++0x1512)
    #4 std::thread::_Invoker<std::tuple<void (*)(long*), long*> >::operator()() /usr/include/c++/12/bits/std_thread.h:259 (race-g+++0x1512)
    #5 std::thread::_State_impl<std::thread::_Invoker<std::tuple<void (*)(long*), long*> > >::_M_run() /usr/include/c++/12/bits/std_thread.h:210 (race-g+++0x1512)
    #6 <null> <null> (libstdc++.so.6+0xd44a2)

  Previous write of size 8 at 0x5585856e7088 by thread T1:
    #0 writer() /tmp/tsx/race.cc:4 (race-g+++0x1239)
    #1 void std::__invoke_impl<void, void (*)()>(std::__invoke_other, void (*&&)()) /usr/include/c++/12/bits/invoke.h:61 (race-g+++0x1549)
    #2 std::__invoke_result<void (*)()>::type std::__invoke<void (*)()>(void (*&&)()) /usr/include/c++/12/bits/invoke.h:96 (race-g+++0x1549)
    #3 void std::thread::_Invoker<std::tuple<void (*)()> >::_M_invoke<0ul>(std::_Index_tuple<0ul>) /usr/include/c++/12/bits/std_thread.h:252 (race-g+++0x1549)
    #4 std::thread::_Invoker<std::tuple<void (*)()> >::operator()() /usr/include/c++/12/bits/std_thread.h:259 (race-g+++0x1549)
    #5 std::thread::_State_impl<std::thread::_Invoker<std::tuple<void (*)()> > >::_M_run() /usr/include/c++/12/bits/std_thread.h:210 (race-g+++0x1549)
    #6 <null> <null> (libstdc++.so.6+0xd44a2)

  Location is global 'counter' of size 8 at 0x5585856e7088 (race-g+++0x4088)

  Thread T2 (tid=8692, running) created by main thread at:
    #0 pthread_create ../../../../src/libsanitizer/tsan/tsan_interceptors_posix.cpp:1001 (libtsan.so.2+0x5e686)
    #1 std::thread::_M_start_thread(std::unique_ptr<std::thread::_State, std::default_delete<std::thread::_State> >, void (*)()) <null> (libstdc++.so.6+0xd4578)
    #2 __libc_start_call_main ../sysdeps/nptl/libc_start_call_main.h:58 (libc.so.6+0x27249)

  Thread T1 (tid=8691, finished) created by main thread at:
    #0 pthread_create ../../../../src/libsanitizer/tsan/tsan_interceptors_posix.cpp:1001 (libtsan.so.2+0x5e686)
    #1 std::thread::_M_start_thread(std::unique_ptr<std::thread::_State, std::default_delete<std::thread::_State> >, void (*)()) <null> (libstdc++.so.6+0xd4578)
    #2 __libc_start_call_main ../sysdeps/nptl/libc_start_call_main.h:58 (libc.so.6+0x27249)

SUMMARY: ThreadSanitizer: data race /tmp/tsx/race.cc:5 in reader(long*)
==================
ThreadSanitizer: reported 1 warnings
"""

CLANG_LOCK_ORDER = r"""
==================
WARNING: ThreadSanitizer: lock-order-inversion (potential deadlock) (pid=8702)
  Cycle in lock order graph: M0 (0x55db5ddfc6a8) => M1 (0x55db5ddfc6d0) => M0

  Mutex M1 acquired here while holding mutex M0 in thread T1:
    #0 pthread_mutex_lock <null> (lo-clang+++0x70f9a) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #1 __gthread_mutex_lock(pthread_mutex_t*) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/x86_64-linux-gnu/c++/12/bits/gthr-default.h:749:12 (lo-clang+++0xd43a6) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #2 std::mutex::lock() /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_mutex.h:100:17 (lo-clang+++0xd43a6)
    #3 std::lock_guard<std::mutex>::lock_guard(std::mutex&) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_mutex.h:229:19 (lo-clang+++0xd43a6)
    #4 ab() /tmp/tsx/lockorder.cc:4:77 (lo-clang+++0xd43a6)
    #5 void std::__invoke_impl<void, void (*)()>(std::__invoke_other, void (*&&)()) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/invoke.h:61:14 (lo-clang+++0xd4669) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #6 std::__invoke_result<void (*)()>::type std::__invoke<void (*)()>(void (*&&)()) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/invoke.h:96:14 (lo-clang+++0xd4669)
    #7 void std::thread::_Invoker<std::tuple<void (*)()> >::_M_invoke<0ul>(std::_Index_tuple<0ul>) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_thread.h:252:13 (lo-clang+++0xd4669)
    #8 std::thread::_Invoker<std::tuple<void (*)()> >::operator()() /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_thread.h:259:11 (lo-clang+++0xd4669)
    #9 std::thread::_State_impl<std::thread::_Invoker<std::tuple<void (*)()> > >::_M_run() /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_thread.h:210:13 (lo-clang+++0xd4669)
    #10 <null> <null> (libstdc++.so.6+0xd44a2) (BuildId: 289ee39f8c07bd4fa48102dfeeb7e6f9c76158b4)

  Mutex M0 previously acquired by the same thread here:
    #0 pthread_mutex_lock <null> (lo-clang+++0x70f9a) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #1 __gthread_mutex_lock(pthread_mutex_t*) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/x86_64-linux-gnu/c++/12/bits/gthr-default.h:749:12 (lo-clang+++0xd4396) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #2 std::mutex::lock() /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_mutex.h:100:17 (lo-clang+++0xd4396)
    #3 std::lock_guard<std::mutex>::lock_guard(std::mutex&) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_mutex.h:229:19 (lo-clang+++0xd4396)
    #4 ab() /tmp/tsx/lockorder.cc:4:41 (lo-clang+++0xd4396)
    #5 void std::__invoke_impl<void, void (*)()>(std::__invoke_other, void (*&&)()) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/invoke.h:61:14 (lo-clang+++0xd4669) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #6 std::__invoke_result<void (*)()>::type std::__invoke<void (*)()>(void (*&&)()) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/invoke.h:96:14 (lo-clang+++0xd4669)
    #7 void std::thread::_Invoker<std::tuple<void (*)()> >::_M_invoke<0ul>(std::_Index_tuple<0ul>) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_thread.h:252:13 (lo-clang+++0xd4669)
    #8 std::thread::_Invoker<std::tuple<void (*)()> >::operator()() /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_thread.h:259:11 (lo-clang+++0xd4669)
    #9 std::thread::_State_impl<std::thread::_Invoker<std::tuple<void (*)()> > >::_M_run() /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_thread.h:210:13 (lo-clang+++0xd4669)
    #10 <null> <null> (libstdc++.so.6+0xd44a2) (BuildId: 289ee39f8c07bd4fa48102dfeeb7e6f9c76158b4)

  Mutex M0 acquired here while holding mutex M1 in thread T2:
    #0 pthread_mutex_lock <null> (lo-clang+++0x70f9a) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #1 __gthread_mutex_lock(pthread_mutex_t*) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/x86_64-linux-gnu/c++/12/bits/gthr-default.h:749:12 (lo-clang+++0xd4426) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #2 std::mutex::lock() /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_mutex.h:100:17 (lo-clang+++0xd4426)
    #3 std::lock_guard<std::mutex>::lock_guard(std::mutex&) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_mutex.h:229:19 (lo-clang+++0xd4426)
    #4 ba() /tmp/tsx/lockorder.cc:5:77 (lo-clang+++0xd4426)
    #5 void std::__invoke_impl<void, void (*)()>(std::__invoke_other, void (*&&)()) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/invoke.h:61:14 (lo-clang+++0xd4669) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #6 std::__invoke_result<void (*)()>::type std::__invoke<void (*)()>(void (*&&)()) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/invoke.h:96:14 (lo-clang+++0xd4669)
    #7 void std::thread::_Invoker<std::tuple<void (*)()> >::_M_invoke<0ul>(std::_Index_tuple<0ul>) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_thread.h:252:13 (lo-clang+++0xd4669)
    #8 std::thread::_Invoker<std::tuple<void (*)()> >::operator()() /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_thread.h:259:11 (lo-clang+++0xd4669)
    #9 std::thread::_State_impl<std::thread::_Invoker<std::tuple<void (*)()> > >::_M_run() /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_thread.h:210:13 (lo-clang+++0xd4669)
    #10 <null> <null> (libstdc++.so.6+0xd44a2) (BuildId: 289ee39f8c07bd4fa48102dfeeb7e6f9c76158b4)

  Mutex M1 previously acquired by the same thread here:
    #0 pthread_mutex_lock <null> (lo-clang+++0x70f9a) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #1 __gthread_mutex_lock(pthread_mutex_t*) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/x86_64-linux-gnu/c++/12/bits/gthr-default.h:749:12 (lo-clang+++0xd4416) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #2 std::mutex::lock() /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_mutex.h:100:17 (lo-clang+++0xd4416)
    #3 std::lock_guard<std::mutex>::lock_guard(std::mutex&) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_mutex.h:229:19 (lo-clang+++0xd4416)
    #4 ba() /tmp/tsx/lockorder.cc:5:41 (lo-clang+++0xd4416)
    #5 void std::__invoke_impl<void, void (*)()>(std::__invoke_other, void (*&&)()) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/invoke.h:61:14 (lo-clang+++0xd4669) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #6 std::__invoke_result<void (*)()>::type std::__invoke<void (*)()>(void (*&&)()) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/invoke.h:96:14 (lo-clang+++0xd4669)
    #7 void std::thread::_Invoker<std::tuple<void (*)()> >::_M_invoke<0ul>(std::_Index_tuple<0ul>) /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_thread.h:252:13 (lo-clang+++0xd4669)
    #8 std::thread::_Invoker<std::tuple<void (*)()> >::operator()() /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_thread.h:259:11 (lo-clang+++0xd4669)
    #9 std::thread::_State_impl<std::thread::_Invoker<std::tuple<void (*)()> > >::_M_run() /usr/bin/../lib/gcc/x86_64-linux-gnu/12/../../../../include/c++/12/bits/std_thread.h:210:13 (lo-clang+++0xd4669)
    #10 <null> <null> (libstdc++.so.6+0xd44a2) (BuildId: 289ee39f8c07bd4fa48102dfeeb7e6f9c76158b4)

  Thread T1 (tid=8704, finished) created by main thread at:
    #0 pthread_create <null> (lo-clang+++0x5340d) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #1 std::thread::_M_start_thread(std::unique_ptr<std::thread::_State, std::default_delete<std::thread::_State> >, void (*)()) <null> (libstdc++.so.6+0xd4578) (BuildId: 289ee39f8c07bd4fa48102dfeeb7e6f9c76158b4)
    #2 __libc_start_call_main csu/../sysdeps/nptl/libc_start_call_main.h:58:16 (libc.so.6+0x27249) (BuildId: 93ac61ec5a8eb1396f9fbd350e3169a558528a40)

  Thread T2 (tid=8705, running) created by main thread at:
    #0 pthread_create <null> (lo-clang+++0x5340d) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1)
    #1 std::thread::_M_start_thread(std::unique_ptr<std::thread::_State, std::default_delete<std::thread::_State> >, void (*)()) <null> (libstdc++.so.6+0xd4578) (BuildId: 289ee39f8c07bd4fa48102dfeeb7e6f9c76158b4)
    #2 __libc_start_call_main csu/../sysdeps/nptl/libc_start_call_main.h:58:16 (libc.so.6+0x27249) (BuildId: 93ac61ec5a8eb1396f9fbd350e3169a558528a40)

SUMMARY: ThreadSanitizer: lock-order-inversion (potential deadlock) (/tmp/tsx/lo-clang+++0x70f9a) (BuildId: 2784f94faf4dba591bcf08eb76a11d180df9e7b1) in pthread_mutex_lock
==================
ThreadSanitizer: reported 1 warnings
"""

BUILDS = {   # name: (compiler, extra flags)
    "g++": ("g++", []),
    "g++ tsan": ("g++", ["-fsanitize=thread"]),
    "clang++ tsan": ("clang++", ["-fsanitize=thread"]),
}
TSAN_BUILDS = [name for name in BUILDS if "tsan" in name]


def line(marker: str) -> int:
    """The line of sync.cc that carries `// marker`."""
    return next(i + 1 for i, text in enumerate(PROGRAM.splitlines()) if text.endswith(f"// {marker}"))


@pytest.fixture(scope="module")
def builds(tmp_path_factory) -> dict:
    """name → the built program (None: that compiler is not installed), compiled in parallel."""
    tmp = tmp_path_factory.mktemp("sync")
    source = tmp / "sync.cc"
    source.write_text(PROGRAM)

    def build(name):
        compiler, flags = BUILDS[name]
        if shutil.which(compiler) is None:
            return name, None
        binary = tmp / name.replace(" ", "-")
        result = run([compiler, "-std=c++20", "-g", "-O1", "-pthread", *flags, source, "-o", binary],
                     timeout=T(120))
        assert result.returncode == 0, f"{name}: " + result.stderr.decode(errors="replace")
        return name, binary

    with concurrent.futures.ThreadPoolExecutor(len(BUILDS)) as pool:
        return dict(pool.map(build, BUILDS))


def built(builds, name) -> pathlib.Path:
    if builds[name] is None:
        if name.startswith("clang"):
            pytest.skip("clang++ is not installed")
        raise AssertionError(f"{BUILDS[name][0]} is not installed")
    return builds[name]


class Hung:
    """The program running `mode` until `waiters` of its threads are blocked on a mutex and
    its main thread waits in join (the state a diagnosis after a long timeout would see;
    waiting only for the mutex once let the main thread be caught before its join)."""

    def __init__(self, binary, mode, log_dir, waiters):
        self.binary, self.mode, self.log_dir, self.waiters = binary, mode, log_dir, waiters

    def __enter__(self) -> int:
        self.proc = self._start(())
        if self.proc.poll() is not None and is_mapping_failure(self._stderr()):
            self.proc = self._start(("setarch", os.uname().machine, "-R"))   # see start_tsan_server
        return self.proc.pid

    def _start(self, wrapper):
        self.stderr_path = self.log_dir / f"stderr-{len(wrapper)}"
        with open(self.stderr_path, "wb") as err:
            proc = spawn([*wrapper, self.binary, self.mode], stdout=subprocess.DEVNULL, stderr=err,
                         env=tsan_env(self.log_dir))
        try:
            blocked = wait_until(lambda: proc.poll() is not None or self._all_blocked(proc.pid), T(10),
                                 "the threads blocked on their mutexes and main in join", interval=0.02)
            assert blocked, f"{self.mode}: no thread blocked on a mutex, or main not in join"
        except BaseException:
            kill_group(proc)
            raise
        return proc

    def _all_blocked(self, pid) -> bool:
        waits = [t.wait for t in thread_states(pid)]
        return waits.count("mutex") >= self.waiters and "join" in waits

    def _stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def __exit__(self, *exc):
        kill_group(self.proc)


def test_gcc_and_clang_report_texts_are_parsed():
    [race] = parse_reports(GCC_RACE)
    assert race.kind == "data race" and race.pid == 8689
    assert race.location == "global 'counter'"
    assert [(s.role, s.previous, s.thread, s.frame.where(), s.frame.short_function) for s in race.sites] == [
        ("read", False, "thread T2", "race.cc:5", "reader"),
        ("write", True, "thread T1", "race.cc:4", "writer")]
    assert race.summary() == ("data race on global 'counter': read at race.cc:5 in reader (thread T2) "
                              "↔ write at race.cc:4 in writer (thread T1)")
    assert race.tsan_summary == "SUMMARY: ThreadSanitizer: data race /tmp/tsx/race.cc:5 in reader(long*)"

    [cycle] = parse_reports(CLANG_LOCK_ORDER.encode())
    assert cycle.kind == "lock-order-inversion (potential deadlock)"
    assert [(s.mutex, s.holding, s.frame.where(), s.frame.column, s.held_at.where()) for s in cycle.sites] == [
        ("M1", "M0", "lockorder.cc:4", 77, "lockorder.cc:4"),
        ("M0", "M1", "lockorder.cc:5", 77, "lockorder.cc:5")]
    assert cycle.summary() == ("lock-order-inversion: M1 taken at lockorder.cc:4 in ab while holding M0 "
                               "(taken at lockorder.cc:4) ↔ M0 taken at lockorder.cc:5 in ba while holding "
                               "M1 (taken at lockorder.cc:5)")

    # amid other output, and with every line marked as the program's
    marked = "\n".join(f"[your program] {row}" for row in GCC_RACE.splitlines())
    mixed = parse_reports("listening\n" + marked + "\nserved 3 clients\n" + CLANG_LOCK_ORDER + "bye\n")
    assert [r.summary() for r in mixed] == [race.summary(), cycle.summary()]
    assert len(mixed[0].lines) == len(race.lines)


def test_mapping_failure_is_not_a_report(tmp_path, monkeypatch):
    fatal = "FATAL: ThreadSanitizer: unexpected memory mapping 0x7f3b6d9fe000-0x7f3b6da00000\n"
    assert is_mapping_failure(fatal) and is_mapping_failure(fatal.encode())
    assert not is_mapping_failure(GCC_RACE)
    assert parse_reports(fatal) == []

    monkeypatch.setenv("TSAN_OPTIONS", "halt_on_error=1")
    options = tsan_env(tmp_path)["TSAN_OPTIONS"]
    assert "atexit_sleep_ms=0" in options and "second_deadlock_stack=1" in options
    assert "/tsan" in options and str(tmp_path) in options
    assert options.endswith(":halt_on_error=1"), "the user's own options come last, so they win"


@pytest.mark.parametrize("build", TSAN_BUILDS)
def test_tsan_names_both_sides_of_the_race(builds, build, tmp_path):
    binary = built(builds, build)
    result, _ = run_tsan([binary, "race"], tmp_path, timeout=T(20))
    assert result.returncode == 66, result.exit_description()
    reports = read_reports(tmp_path, source_dir=binary.parent)
    assert [r.kind for r in reports] == ["data race"], [r.summary() for r in reports]
    sides = {(s.role, s.frame.where(binary.parent), s.frame.short_function) for s in reports[0].sites}
    assert sides == {("write", f"sync.cc:{line('RACE-WRITE')}", "bump"),
                     ("read", f"sync.cc:{line('RACE-READ')}", "peek")}, reports[0].text
    assert reports[0].location == "global 'counter'"


@pytest.mark.parametrize("build", TSAN_BUILDS)
def test_tsan_names_both_lock_orders(builds, build, tmp_path):
    binary = built(builds, build)
    result, _ = run_tsan([binary, "lock-order"], tmp_path, timeout=T(20))
    assert result.returncode == 66, result.exit_description()
    [report] = read_reports(tmp_path, source_dir=binary.parent)
    assert report.kind == "lock-order-inversion (potential deadlock)"
    first, second = report.sites
    assert (first.mutex, first.holding) == (second.holding, second.mutex)
    edges = {(s.frame.where(), s.frame.short_function, s.held_at.where()) for s in report.sites}
    assert edges == {(f"sync.cc:{line('AB-SECOND')}", "take_ab", f"sync.cc:{line('AB-FIRST')}"),
                     (f"sync.cc:{line('BA-SECOND')}", "take_ba", f"sync.cc:{line('BA-FIRST')}")}, report.text
    assert f"taken at sync.cc:{line('AB-SECOND')} in take_ab while holding" in report.summary()


@pytest.mark.parametrize("build", BUILDS)
def test_a_mutex_locked_twice_is_named(builds, build, tmp_path):
    binary = built(builds, build)
    with Hung(binary, "self-lock", tmp_path, waiters=1) as pid:
        started = time.monotonic()
        lines = diagnose_hang(pid, source_dir=binary.parent)
        seconds = time.monotonic() - started
    text = "\n".join(lines)
    assert "waits for mutex A (0x" in text and "which it holds itself: it locked the same mutex twice" in text, text
    assert "(main thread) waits for thread" in text and "to finish (join)" in text, text
    if shutil.which("gdb"):
        assert "global 'table_mutex'" in text, text
        assert (f"is at sync.cc:{line('SELF-LOCK')} in lock_twice: "
                "std::lock_guard<std::mutex> again(table_mutex);") in text, text
    assert seconds < T(5)


@pytest.mark.parametrize("build", BUILDS)
def test_an_abba_deadlock_is_named_as_a_cycle(builds, build, tmp_path):
    binary = built(builds, build)
    with Hung(binary, "abba", tmp_path, waiters=2) as pid:
        lines = diagnose_hang(pid, source_dir=binary.parent)
    text = "\n".join(lines)
    [cycle] = [row for row in lines if row.endswith("a lock-order cycle (ABBA)")]
    assert "mutex A" in cycle and "mutex B" in cycle and cycle.count("held by thread") == 2, text
    if shutil.which("gdb"):
        assert "global 'ma'" in cycle and "global 'mb'" in cycle, text
        assert f"is at sync.cc:{line('ABBA-1')} in hold_a_then_b" in text, text
        assert f"is at sync.cc:{line('ABBA-2')} in hold_b_then_a" in text, text


def test_without_gdb_the_proc_part_still_speaks(builds, tmp_path, monkeypatch):
    binary = built(builds, "g++")
    which = shutil.which
    monkeypatch.setattr(deadlock.shutil, "which", lambda name: None if name == "gdb" else which(name))
    with Hung(binary, "self-lock", tmp_path, waiters=1) as pid:
        lines = diagnose_hang(pid, source_dir=binary.parent)
    assert any("which it holds itself" in row for row in lines), lines
    assert lines[-1].startswith("gdb is not installed"), lines


def test_diagnosis_never_raises(monkeypatch):
    gone = run(["true"], timeout=T(5))
    assert gone.returncode == 0
    proc = spawn(["sleep", "0"])
    proc.wait(timeout=T(5))
    assert diagnose_hang(proc.pid) == [f"process {proc.pid} has already exited"]

    def broken(*args):
        raise RuntimeError("no /proc here")
    monkeypatch.setattr(deadlock, "thread_states", broken)
    assert diagnose_hang(os.getpid()) == [f"could not diagnose process {os.getpid()}: RuntimeError: no /proc here"]


# A stand-in for a TSan build on a kernel with high vm.mmap_rnd_bits: it aborts as TSan
# does unless address-space randomisation is off (setarch -R); with `always`, even then.
FAKE_TSAN_SERVER = r"""#!/usr/bin/python3
import os, re, socket, sys, time
ADDR_NO_RANDOMIZE = 0x0040000
with open("/proc/self/personality") as f:
    randomised = not int(f.read(), 16) & ADDR_NO_RANDOMIZE
if randomised or "always" in sys.argv:
    message = "FATAL: ThreadSanitizer: unexpected memory mapping 0x7f3b6d9fe000-0x7f3b6da00000\n"
    log = re.search(r"log_path=([^:]+)", os.environ.get("TSAN_OPTIONS", ""))
    if "always" in sys.argv and log:
        with open(f"{log.group(1)}.{os.getpid()}", "w") as f:
            f.write(message)
    else:
        sys.stderr.write(message)
    sys.exit(66)
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
print("port", s.getsockname()[1], flush=True)
time.sleep(60)
"""


@pytest.fixture
def fake_tsan_server(tmp_path) -> pathlib.Path:
    script = tmp_path / "fake-tsan-server"
    script.write_text(FAKE_TSAN_SERVER)
    script.chmod(0o755)
    return script


def test_a_mapping_failure_is_rerun_under_setarch(fake_tsan_server, tmp_path):
    logs = tmp_path / "logs"
    server, retried = start_tsan_server(fake_tsan_server, logs)
    with server:
        assert retried and server.port and server.alive()
        assert server.argv[:3] == ["setarch", os.uname().machine, "-R"]
    assert read_reports(logs) == []


def test_a_mapping_failure_under_setarch_cannot_be_checked(fake_tsan_server, tmp_path):
    logs = tmp_path / "logs"
    with pytest.raises(CannotCheck) as caught:
        start_tsan_server(fake_tsan_server, logs, args=["always"])
    assert "mmap_rnd_bits" in caught.value.why and "setarch -R too" in caught.value.why
    assert caught.value.fix == "sudo sysctl vm.mmap_rnd_bits=28"
