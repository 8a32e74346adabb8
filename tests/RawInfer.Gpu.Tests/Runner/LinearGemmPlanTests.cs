using RawInfer.Gpu.Runner;
using Xunit;

namespace RawInfer.Gpu.Tests.Runner;

/// <summary>
/// The cuBLAS operand plan, checked by running a plain column-major GEMM (what cublasGemmEx computes, with the
/// same op flags and leading dimensions) over the row-major buffers and comparing with Y = X · Wᵀ.
/// </summary>
public sealed class LinearGemmPlanTests
{
    [Theory]
    [InlineData(1, 1, 1)]
    [InlineData(1, 17, 5)]
    [InlineData(3, 64, 48)]
    [InlineData(7, 33, 257)]
    [InlineData(100, 16, 9)]
    public void ColumnMajorGemmWithThePlanComputesTheRowMajorLinearLayer(int rows, int inFeatures, int outFeatures)
    {
        var random = new Random(rows * 1000 + inFeatures + outFeatures);
        var w = RandomArray(random, outFeatures * inFeatures); // row-major (out, in)
        var x = RandomArray(random, rows * inFeatures);        // row-major (rows, in)
        var plan = LinearGemmPlan.ForLinear(rows, inFeatures, outFeatures);

        var y = new float[rows * outFeatures]; // row-major (rows, out), filled by the column-major GEMM
        ColumnMajorGemm(plan, a: w, b: x, c: y);

        for (var r = 0; r < rows; r++)
        {
            for (var o = 0; o < outFeatures; o++)
            {
                double expected = 0;
                for (var i = 0; i < inFeatures; i++)
                {
                    expected += (double)x[(r * inFeatures) + i] * w[(o * inFeatures) + i];
                }

                Assert.Equal(expected, y[(r * outFeatures) + o], 1e-4);
            }
        }
    }

    [Fact]
    public void PlanPutsTheWeightFirstAndTransposed()
    {
        var plan = LinearGemmPlan.ForLinear(rows: 4, inFeatures: 2048, outFeatures: 5632);
        Assert.Equal(new LinearGemmPlan(true, false, M: 5632, N: 4, K: 2048, Lda: 2048, Ldb: 2048, Ldc: 5632), plan);
    }

    [Fact]
    public void NonPositiveDimensionsAreRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => LinearGemmPlan.ForLinear(0, 4, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => LinearGemmPlan.ForLinear(1, -1, 4));
        Assert.Throws<ArgumentOutOfRangeException>(() => LinearGemmPlan.ForLinear(1, 4, 0));
    }

    /// <summary>
    /// C = op(A) · op(B) in column-major storage, exactly as BLAS defines it: element (i, j) of a column-major
    /// matrix with leading dimension ld lives at i + j·ld; op(X) = Xᵀ swaps the indices.
    /// </summary>
    private static void ColumnMajorGemm(LinearGemmPlan p, float[] a, float[] b, float[] c)
    {
        for (var j = 0; j < p.N; j++)
        {
            for (var i = 0; i < p.M; i++)
            {
                double sum = 0;
                for (var l = 0; l < p.K; l++)
                {
                    var aij = p.TransposeA ? a[l + (i * p.Lda)] : a[i + (l * p.Lda)];
                    var blj = p.TransposeB ? b[j + (l * p.Ldb)] : b[l + (j * p.Ldb)];
                    sum += (double)aij * blj;
                }

                c[i + (j * p.Ldc)] = (float)sum;
            }
        }
    }

    private static float[] RandomArray(Random random, int count)
    {
        var result = new float[count];
        for (var i = 0; i < count; i++)
        {
            result[i] = (2 * random.NextSingle()) - 1;
        }

        return result;
    }
}
