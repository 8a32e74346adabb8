namespace RawInfer.Gpu.Runner;

/// <summary>
/// How a row-major linear layer maps onto cuBLAS, which is column-major.
/// <para>
/// The layer is Y (rows, out) = X (rows, in) · Wᵀ with W stored row-major (out, in), as every weight here is.
/// Read in column-major order, a row-major (r, c) matrix with leading dimension c <i>is</i> its transpose:
/// W is column-major (in, out) with ld = in, X is (in, rows) with ld = in, and Y is (out, rows) with ld = out.
/// So Yᶜ (out, rows) = (Wᶜ)ᵀ · Xᶜ, i.e. <c>cublasGemmEx(OP_T, OP_N, m = out, n = rows, k = in, A = W, lda = in,
/// B = X, ldb = in, C = Y, ldc = out)</c> — no copy or transpose of either operand, and the weight (the large
/// operand) is A, read along its contiguous rows.
/// </para>
/// </summary>
/// <param name="TransposeA">Whether A (the weight) enters transposed: always true.</param>
/// <param name="TransposeB">Whether B (the activations) enters transposed: always false.</param>
/// <param name="M">Rows of op(A) and of C in column-major terms: the layer's outputs.</param>
/// <param name="N">Columns of op(B) and of C: the batch rows.</param>
/// <param name="K">The shared dimension: the layer's inputs.</param>
/// <param name="Lda">Leading dimension of A as stored (column-major (K, M)): K.</param>
/// <param name="Ldb">Leading dimension of B as stored (column-major (K, N)): K.</param>
/// <param name="Ldc">Leading dimension of C (column-major (M, N)): M.</param>
public readonly record struct LinearGemmPlan(bool TransposeA, bool TransposeB, int M, int N, int K, int Lda, int Ldb, int Ldc)
{
    /// <summary>The plan for Y (rows, outFeatures) = X (rows, inFeatures) · Wᵀ, W row-major (outFeatures, inFeatures).</summary>
    /// <exception cref="ArgumentOutOfRangeException">A dimension is not positive.</exception>
    public static LinearGemmPlan ForLinear(int rows, int inFeatures, int outFeatures)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(rows);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(inFeatures);
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(outFeatures);
        return new LinearGemmPlan(
            TransposeA: true, TransposeB: false, M: outFeatures, N: rows, K: inFeatures, Lda: inFeatures, Ldb: inFeatures, Ldc: outFeatures);
    }
}
