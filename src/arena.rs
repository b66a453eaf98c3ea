//! The binary's global allocator: a bump arena for small allocations, the
//! system allocator for everything else.
//!
//! A runtime command lives for milliseconds and allocates a few hundred
//! kilobytes, almost all of it small (the parsed config, paths, JSON). A bump
//! pointer serves those with one atomic add, frees only the last block (the
//! common temporary), and packs them into few pages; musl's allocator spent ~0.3 ms of a `run` here on
//! bookkeeping and page faults. Allocations above [`SMALL`], and all of them
//! once the arena is used up (a long `run` or `events`), go to the system
//! allocator, so nothing grows without bound: the arena is a fixed 4 MiB of
//! zeroed address space that costs memory only for the pages it touches.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering};

const SIZE: usize = 4 << 20;
/// Larger allocations (I/O buffers, image data) are not worth keeping.
const SMALL: usize = 64 << 10;
/// The largest freed block taken back (see `dealloc`).
const REWIND_MAX: usize = 4 << 10;

#[repr(C, align(4096))]
struct Buf(UnsafeCell<[u8; SIZE]>);

// SAFETY: disjoint ranges of the buffer are handed out once each, through the
// atomic `next`; the buffer itself is never accessed here.
unsafe impl Sync for Buf {}

pub struct Arena {
    buf: Buf,
    next: AtomicUsize,
}

impl Arena {
    pub const fn new() -> Arena {
        Arena { buf: Buf(UnsafeCell::new([0; SIZE])), next: AtomicUsize::new(0) }
    }

    fn base(&self) -> usize {
        self.buf.0.get() as usize
    }

    fn contains(&self, p: *mut u8) -> bool {
        (p as usize).wrapping_sub(self.base()) < SIZE
    }

    /// A fresh (still zeroed) block, or None when the arena is used up.
    fn bump(&self, l: Layout) -> Option<*mut u8> {
        let base = self.base();
        let mut cur = self.next.load(Ordering::Relaxed);
        loop {
            let start = (base + cur).checked_next_multiple_of(l.align())? - base;
            let end = start.checked_add(l.size())?;
            if end > SIZE {
                return None;
            }
            match self.next.compare_exchange_weak(cur, end, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return Some((base + start) as *mut u8),
                Err(now) => cur = now,
            }
        }
    }
}

impl Default for Arena {
    fn default() -> Self {
        Arena::new()
    }
}

// SAFETY: every block is either a fresh, suitably aligned range of the arena
// that is never handed out again, or comes from (and returns to) `System`.
unsafe impl GlobalAlloc for Arena {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        if l.size() <= SMALL {
            if let Some(p) = self.bump(l) {
                return p;
            }
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc(l) }
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        if l.size() <= SMALL {
            // Arena memory is handed out once and starts zeroed.
            if let Some(p) = self.bump(l) {
                return p;
            }
        }
        // SAFETY: forwarded with the caller's layout.
        unsafe { System.alloc_zeroed(l) }
    }

    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        if !self.contains(p) {
            // SAFETY: not ours, so System's, with the layout it was made with.
            return unsafe { System.dealloc(p, l) };
        }
        // The last block handed out (a temporary string, a buffer that grew
        // and moved): take it back. Its bytes are zeroed again, so that
        // everything above `next` stays zero for alloc_zeroed. Only small
        // blocks: zeroing a large one writes every page of it, and most of a
        // large buffer (a 64 KiB read buffer holding one line of procfs) was
        // never touched: each page would fault in only to be cleared (16
        // page faults per such buffer, copy-on-write ones after clone).
        let start = p as usize - self.base();
        if l.size() <= REWIND_MAX && self.next.load(Ordering::Relaxed) == start + l.size() {
            // SAFETY: the block is ours and no longer in use.
            unsafe { p.write_bytes(0, l.size()) };
            let _ = self.next.compare_exchange(start + l.size(), start, Ordering::Relaxed, Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        if !self.contains(p) {
            // SAFETY: System's block, the caller's layout and size.
            return unsafe { System.realloc(p, l, new) };
        }
        if new <= l.size() {
            return p;
        }
        // Grow in place when this block is the last one handed out.
        let (base, old_end) = (self.base(), p as usize - self.base() + l.size());
        let new_end = p as usize - base + new;
        if new <= SMALL
            && new_end <= SIZE
            && self.next.compare_exchange(old_end, new_end, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            return p;
        }
        // SAFETY: the new layout keeps the caller's alignment; `new` is non-zero.
        let q = unsafe { self.alloc(Layout::from_size_align_unchecked(new, l.align())) };
        if !q.is_null() {
            // SAFETY: both blocks are valid for l.size() bytes and distinct.
            unsafe { std::ptr::copy_nonoverlapping(p, q, l.size()) };
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_from_arena_large_from_system_and_realloc() {
        static A: Arena = Arena::new();
        let a = &A;
        unsafe {
            let l = Layout::from_size_align(24, 8).unwrap();
            let p = a.alloc(l);
            assert!(a.contains(p) && p as usize % 8 == 0);
            let z = a.alloc_zeroed(Layout::from_size_align(100, 64).unwrap());
            assert!(a.contains(z) && z as usize % 64 == 0);
            assert!(std::slice::from_raw_parts(z, 100).iter().all(|&b| b == 0));
            // the last block grows in place
            let g = a.realloc(z, Layout::from_size_align(100, 64).unwrap(), 300);
            assert_eq!(g, z);
            // the last block is taken back (zeroed) when freed
            g.write_bytes(9, 300);
            a.dealloc(g, Layout::from_size_align(300, 64).unwrap());
            let h = a.alloc_zeroed(Layout::from_size_align(300, 64).unwrap());
            assert_eq!(h, g);
            assert!(std::slice::from_raw_parts(h, 300).iter().all(|&b| b == 0));
            // a large last block is left in place when freed: clearing it
            // would touch all its pages
            let lb = Layout::from_size_align(REWIND_MAX + 8, 8).unwrap();
            let b = a.alloc(lb);
            a.dealloc(b, lb);
            let after = a.alloc(l);
            assert!(after as usize >= b as usize + lb.size());
            // an earlier one moves, keeping its bytes
            p.write_bytes(7, 24);
            let q = a.realloc(p, l, 4000);
            assert_ne!(q, p);
            assert!(std::slice::from_raw_parts(q, 24).iter().all(|&b| b == 7));
            let big = Layout::from_size_align(SMALL + 1, 8).unwrap();
            let b = a.alloc(big);
            assert!(!a.contains(b));
            a.dealloc(b, big);
            // once used up, everything comes from the system
            while a.bump(Layout::from_size_align(SMALL, 8).unwrap()).is_some() {}
            while a.bump(Layout::from_size_align(8, 8).unwrap()).is_some() {}
            let s = a.alloc(l);
            assert!(!s.is_null() && !a.contains(s));
            a.dealloc(s, l);
        }
    }
}
