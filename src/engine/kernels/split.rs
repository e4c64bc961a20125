//! How kernels cut their work into parallel jobs. Only where an output element is computed
//! changes with the cut, never how: every element is the same sequence of operations
//! whatever the thread count.

use std::ops::Range;

/// `n` floats with unspecified contents, for a kernel that writes every one before anything
/// reads it (a conv's output, its padded input copy): zeroing them first was a full extra pass
/// over memory per conv (memset: 4 % of YOLOX's time). Debug builds, which the tests run,
/// fill them with NaN instead, so that an element a kernel leaves unwritten shows up as NaN
/// in the oracle and bitwise tests.
///
/// # Safety
/// No element may be read before it has been written.
pub unsafe fn unfilled_f32(n: usize) -> Vec<f32> {
    // SAFETY: forwarded from the caller.
    unsafe { unfilled(n, f32::NAN) }
}

/// [`unfilled_f32`] for int32 accumulators; debug builds fill them with `i32::MIN`, a value
/// no int8 layer's sum reaches.
///
/// # Safety
/// No element may be read before it has been written.
pub unsafe fn unfilled_i32(n: usize) -> Vec<i32> {
    // SAFETY: forwarded from the caller.
    unsafe { unfilled(n, i32::MIN) }
}

/// `n` values with unspecified contents (`debug_fill` in debug builds).
///
/// # Safety
/// No element may be read before it has been written.
unsafe fn unfilled<T: Copy>(n: usize, debug_fill: T) -> Vec<T> {
    let mut v: Vec<std::mem::MaybeUninit<T>> = Vec::with_capacity(n);
    // SAFETY: the capacity is n, and MaybeUninit needs no initialization.
    unsafe { v.set_len(n) };
    if cfg!(debug_assertions) {
        v.fill(std::mem::MaybeUninit::new(debug_fill));
    }
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: the same allocation, length and capacity, and MaybeUninit<T> has T's layout;
    // the caller reads no element before writing it.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr().cast::<T>(), n, v.capacity()) }
}

/// Part `i` of `0..n` cut into `parts` contiguous ranges whose lengths differ by at most 1.
pub fn even_range(i: usize, parts: usize, n: usize) -> Range<usize> {
    (i * n / parts)..((i + 1) * n / parts)
}

/// Into how many panel ranges to cut each of `blocks` equal column blocks of a product with
/// `panels` weight panels, so that `threads` get even shares: few blocks, or a count that
/// does not divide among the threads, leave one thread idle while another finishes (e.g. 7
/// blocks on 2 threads cost 4 blocks of time, 1 block on 2 threads runs serially).
pub fn panel_chunks(blocks: usize, panels: usize, threads: usize) -> usize {
    if threads <= 1 || blocks == 0 || (blocks >= 4 * threads && (blocks.is_multiple_of(threads) || blocks >= 8 * threads)) {
        return 1;
    }
    // At least 4 jobs per thread (a late-waking thread still gets a share), a multiple of
    // the thread count per block.
    (4 * threads).div_ceil(blocks).next_multiple_of(threads).clamp(1, panels.max(1))
}

/// The number of equal column tiles (at least `tiles`) whose `jobs_per_tile · tiles` jobs
/// divide evenly among `threads`, when there are few enough jobs for a remainder to matter.
pub fn balanced_tiles(tiles: usize, jobs_per_tile: usize, threads: usize, max_tiles: usize) -> usize {
    let jobs = tiles * jobs_per_tile;
    if threads <= 1 || jobs == 0 || jobs.is_multiple_of(threads) || jobs >= 8 * threads {
        return tiles;
    }
    let mut n = tiles;
    while !(n * jobs_per_tile).is_multiple_of(threads) && n < max_tiles {
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_cover_and_shares_even_out() {
        let parts: Vec<_> = (0..4).map(|i| even_range(i, 4, 10)).collect();
        assert_eq!(parts, [0..2, 2..5, 5..7, 7..10]);
        assert_eq!(panel_chunks(7, 12, 1), 1);
        assert_eq!(panel_chunks(7, 12, 2), 2);
        assert_eq!(panel_chunks(1, 60, 2), 8);
        assert_eq!(panel_chunks(1, 3, 2), 3);
        assert_eq!(panel_chunks(104, 3, 2), 1);
        assert_eq!(balanced_tiles(9, 1, 2, 100), 10);
        assert_eq!(balanced_tiles(3, 1, 2, 3), 3);
        assert_eq!(balanced_tiles(4, 1, 2, 100), 4);
    }
}
