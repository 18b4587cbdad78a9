//! Matrix products on the CPU: the one safe wrapper over the `gemm` crate, for the networks'
//! convolutions (`cpu_conv`) and the neighbour graph's dot products (`graph::product`).
//!
//! A matrix is a slice with its shape and strides; every element a product reads or writes is
//! checked to lie inside its slice before `gemm` is called. Single-threaded: callers split their
//! work across threads above this. [`bf16`] holds the bf16 product where the CPU has one.

pub mod bf16;

/// A matrix of `f32` in a slice: element `(i, j)` at `i * row + j * col`.
#[derive(Debug, Clone, Copy)]
pub struct Matrix<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    /// Distance between one row's elements and the next row's.
    pub row: usize,
    /// Distance between neighbouring elements of a row.
    pub col: usize,
}

impl<'a> Matrix<'a> {
    /// `rows x cols`, stored row after row.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Matrix {
            data,
            rows,
            cols,
            row: cols,
            col: 1,
        }
    }

    /// The transpose of `rows x cols` stored row after row: a `cols x rows` matrix.
    pub fn transposed(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Matrix {
            data,
            rows: cols,
            cols: rows,
            row: 1,
            col: cols,
        }
    }

    /// One past the last element's index (0 for an empty matrix).
    fn extent(&self) -> usize {
        extent(self.rows, self.cols, self.row, self.col)
    }
}

fn extent(rows: usize, cols: usize, row: usize, col: usize) -> usize {
    if rows == 0 || cols == 0 {
        0
    } else {
        (rows - 1) * row + (cols - 1) * col + 1
    }
}

/// `out = scale * a · b`, or `out += scale * a · b` when `accumulate`: `out` is the
/// `a.rows x b.cols` matrix whose rows start `ld` apart from `out[0]`, its elements side by side.
#[inline]
pub fn product(a: Matrix, b: Matrix, out: &mut [f32], ld: usize, accumulate: bool, scale: f32) {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    assert_eq!(b.rows, k, "a product of {m} x {k} and {} x {n}", b.rows);
    assert!(
        a.extent() <= a.data.len()
            && b.extent() <= b.data.len()
            && extent(m, n, ld, 1) <= out.len(),
        "a matrix reaches past its slice"
    );
    if m == 0 || n == 0 {
        return;
    }
    // SAFETY: the assert above bounds every element gemm reads (`a`, `b`: their shapes and
    // strides stay inside their slices) and writes (`out`: m rows `ld` apart, n elements each).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out.as_mut_ptr(),
            1,
            ld as isize,
            accumulate,
            a.data.as_ptr(),
            a.col as isize,
            a.row as isize,
            b.data.as_ptr(),
            b.col as isize,
            b.row as isize,
            if accumulate { 1.0 } else { 0.0 },
            scale,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every element against the textbook sum, for row-major and transposed operands, written
    /// and accumulated, into rows wider than the product.
    #[test]
    fn products_match_the_sums_they_stand_for() {
        let (m, k, n) = (5, 7, 3);
        let a: Vec<f32> = (0..m * k).map(|i| (i % 11) as f32 - 5.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.5 - 1.0).collect();
        // b stored transposed: n rows of k.
        let bt: Vec<f32> = (0..n * k).map(|i| b[(i % k) * n + i / k]).collect();
        let sum = |i: usize, j: usize| (0..k).map(|t| a[i * k + t] * b[t * n + j]).sum::<f32>();
        let ld = n + 2;
        for (rhs, accumulate) in [
            (Matrix::row_major(&b, k, n), false),
            (Matrix::transposed(&bt, n, k), true),
        ] {
            let mut out = vec![1.0f32; m * ld];
            product(
                Matrix::row_major(&a, m, k),
                rhs,
                &mut out,
                ld,
                accumulate,
                2.0,
            );
            for i in 0..m {
                for j in 0..ld {
                    let want = match (j < n, accumulate) {
                        (false, _) => 1.0,
                        (true, false) => 2.0 * sum(i, j),
                        (true, true) => 1.0 + 2.0 * sum(i, j),
                    };
                    assert_eq!(out[i * ld + j], want, "({i}, {j}), accumulate {accumulate}");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "reaches past its slice")]
    fn a_matrix_past_its_slice_is_refused() {
        let a = vec![0f32; 6];
        let mut out = vec![0f32; 4];
        product(
            Matrix::row_major(&a, 2, 3),
            Matrix::row_major(&a, 3, 3),
            &mut out,
            2,
            false,
            1.0,
        );
    }
}
