using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels;

internal static unsafe partial class GemmF32
{
    /// <summary>
    /// 256-bit tiles. AVX2 has 16 vector registers, so the 4×4 tile runs as two 4×2 passes (8 accumulators,
    /// 4 W vectors, 1 X vector live) rather than spilling 16 accumulators; the order per pair is unchanged.
    /// </summary>
    internal readonly struct Vector256Kernel : IGemmKernel
    {
        private const int N = 8; // Vector256<float>.Count

        public static void Tile4x4(float* w, float* x, int cols, float* y, int yStride)
        {
            Tile4x2(w, x, cols, y, yStride);
            Tile4x2(w, x + (2L * cols), cols, y + (2L * yStride), yStride);
        }

        public static void Tile4x1(float* w, float* x, int cols, float* y)
        {
            var w0 = w;
            var w1 = w0 + cols;
            var w2 = w1 + cols;
            var w3 = w2 + cols;
            Vector256<float> c0 = default, c1 = default, c2 = default, c3 = default;
            var j = 0;
            for (; j + N <= cols; j += N)
            {
                var b = Vector256.Load(x + j);
                c0 = Simd.MulAdd(Vector256.Load(w0 + j), b, c0);
                c1 = Simd.MulAdd(Vector256.Load(w1 + j), b, c1);
                c2 = Simd.MulAdd(Vector256.Load(w2 + j), b, c2);
                c3 = Simd.MulAdd(Vector256.Load(w3 + j), b, c3);
            }

            y[0] = Tail(w0, x, j, cols, Vector256.Sum(c0));
            y[1] = Tail(w1, x, j, cols, Vector256.Sum(c1));
            y[2] = Tail(w2, x, j, cols, Vector256.Sum(c2));
            y[3] = Tail(w3, x, j, cols, Vector256.Sum(c3));
        }

        public static float Dot(float* w, float* x, int cols)
        {
            var acc = Vector256<float>.Zero;
            var j = 0;
            for (; j + N <= cols; j += N)
            {
                acc = Simd.MulAdd(Vector256.Load(w + j), Vector256.Load(x + j), acc);
            }

            return Tail(w, x, j, cols, Vector256.Sum(acc));
        }

        /// <summary>y[i·yStride + r] = w_r·x_i for r in 0..3, i in 0..1.</summary>
        private static void Tile4x2(float* w, float* x, int cols, float* y, int yStride)
        {
            var w0 = w;
            var w1 = w0 + cols;
            var w2 = w1 + cols;
            var w3 = w2 + cols;
            var x0 = x;
            var x1 = x0 + cols;
            Vector256<float> c00 = default, c10 = default, c20 = default, c30 = default;
            Vector256<float> c01 = default, c11 = default, c21 = default, c31 = default;
            var j = 0;
            for (; j + N <= cols; j += N)
            {
                var a0 = Vector256.Load(w0 + j);
                var a1 = Vector256.Load(w1 + j);
                var a2 = Vector256.Load(w2 + j);
                var a3 = Vector256.Load(w3 + j);

                var b = Vector256.Load(x0 + j);
                c00 = Simd.MulAdd(a0, b, c00);
                c10 = Simd.MulAdd(a1, b, c10);
                c20 = Simd.MulAdd(a2, b, c20);
                c30 = Simd.MulAdd(a3, b, c30);

                b = Vector256.Load(x1 + j);
                c01 = Simd.MulAdd(a0, b, c01);
                c11 = Simd.MulAdd(a1, b, c11);
                c21 = Simd.MulAdd(a2, b, c21);
                c31 = Simd.MulAdd(a3, b, c31);
            }

            var y1 = y + yStride;
            y[0] = Tail(w0, x0, j, cols, Vector256.Sum(c00));
            y[1] = Tail(w1, x0, j, cols, Vector256.Sum(c10));
            y[2] = Tail(w2, x0, j, cols, Vector256.Sum(c20));
            y[3] = Tail(w3, x0, j, cols, Vector256.Sum(c30));
            y1[0] = Tail(w0, x1, j, cols, Vector256.Sum(c01));
            y1[1] = Tail(w1, x1, j, cols, Vector256.Sum(c11));
            y1[2] = Tail(w2, x1, j, cols, Vector256.Sum(c21));
            y1[3] = Tail(w3, x1, j, cols, Vector256.Sum(c31));
        }
    }
}
