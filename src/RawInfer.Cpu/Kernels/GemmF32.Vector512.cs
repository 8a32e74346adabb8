using System.Runtime.Intrinsics;

namespace RawInfer.Cpu.Kernels;

internal static unsafe partial class GemmF32
{
    /// <summary>
    /// 512-bit tiles. The 4×4 tile holds 16 accumulators (one per (w row, x row) pair) and loads each W and X
    /// vector once per k step: 8 loads feed 16 FMA, so the FMA units, not the loads, set the pace. Each
    /// accumulator is one dependency chain over k, which is the canonical summation order.
    /// </summary>
    internal readonly struct Vector512Kernel : IGemmKernel
    {
        private const int N = 16; // Vector512<float>.Count

        public static void Tile4x4(float* w, float* x, int cols, float* y, int yStride)
        {
            var w0 = w;
            var w1 = w0 + cols;
            var w2 = w1 + cols;
            var w3 = w2 + cols;
            var x0 = x;
            var x1 = x0 + cols;
            var x2 = x1 + cols;
            var x3 = x2 + cols;

            // cRI: w row R against x row I
            Vector512<float> c00 = default, c10 = default, c20 = default, c30 = default;
            Vector512<float> c01 = default, c11 = default, c21 = default, c31 = default;
            Vector512<float> c02 = default, c12 = default, c22 = default, c32 = default;
            Vector512<float> c03 = default, c13 = default, c23 = default, c33 = default;
            var j = 0;
            for (; j + N <= cols; j += N)
            {
                var a0 = Vector512.Load(w0 + j);
                var a1 = Vector512.Load(w1 + j);
                var a2 = Vector512.Load(w2 + j);
                var a3 = Vector512.Load(w3 + j);

                var b = Vector512.Load(x0 + j);
                c00 = Simd.MulAdd(a0, b, c00);
                c10 = Simd.MulAdd(a1, b, c10);
                c20 = Simd.MulAdd(a2, b, c20);
                c30 = Simd.MulAdd(a3, b, c30);

                b = Vector512.Load(x1 + j);
                c01 = Simd.MulAdd(a0, b, c01);
                c11 = Simd.MulAdd(a1, b, c11);
                c21 = Simd.MulAdd(a2, b, c21);
                c31 = Simd.MulAdd(a3, b, c31);

                b = Vector512.Load(x2 + j);
                c02 = Simd.MulAdd(a0, b, c02);
                c12 = Simd.MulAdd(a1, b, c12);
                c22 = Simd.MulAdd(a2, b, c22);
                c32 = Simd.MulAdd(a3, b, c32);

                b = Vector512.Load(x3 + j);
                c03 = Simd.MulAdd(a0, b, c03);
                c13 = Simd.MulAdd(a1, b, c13);
                c23 = Simd.MulAdd(a2, b, c23);
                c33 = Simd.MulAdd(a3, b, c33);
            }

            var y0 = y;
            var y1 = y0 + yStride;
            var y2 = y1 + yStride;
            var y3 = y2 + yStride;
            y0[0] = Tail(w0, x0, j, cols, Vector512.Sum(c00));
            y0[1] = Tail(w1, x0, j, cols, Vector512.Sum(c10));
            y0[2] = Tail(w2, x0, j, cols, Vector512.Sum(c20));
            y0[3] = Tail(w3, x0, j, cols, Vector512.Sum(c30));
            y1[0] = Tail(w0, x1, j, cols, Vector512.Sum(c01));
            y1[1] = Tail(w1, x1, j, cols, Vector512.Sum(c11));
            y1[2] = Tail(w2, x1, j, cols, Vector512.Sum(c21));
            y1[3] = Tail(w3, x1, j, cols, Vector512.Sum(c31));
            y2[0] = Tail(w0, x2, j, cols, Vector512.Sum(c02));
            y2[1] = Tail(w1, x2, j, cols, Vector512.Sum(c12));
            y2[2] = Tail(w2, x2, j, cols, Vector512.Sum(c22));
            y2[3] = Tail(w3, x2, j, cols, Vector512.Sum(c32));
            y3[0] = Tail(w0, x3, j, cols, Vector512.Sum(c03));
            y3[1] = Tail(w1, x3, j, cols, Vector512.Sum(c13));
            y3[2] = Tail(w2, x3, j, cols, Vector512.Sum(c23));
            y3[3] = Tail(w3, x3, j, cols, Vector512.Sum(c33));
        }

        public static void Tile4x1(float* w, float* x, int cols, float* y)
        {
            var w0 = w;
            var w1 = w0 + cols;
            var w2 = w1 + cols;
            var w3 = w2 + cols;
            Vector512<float> c0 = default, c1 = default, c2 = default, c3 = default;
            var j = 0;
            for (; j + N <= cols; j += N)
            {
                var b = Vector512.Load(x + j);
                c0 = Simd.MulAdd(Vector512.Load(w0 + j), b, c0);
                c1 = Simd.MulAdd(Vector512.Load(w1 + j), b, c1);
                c2 = Simd.MulAdd(Vector512.Load(w2 + j), b, c2);
                c3 = Simd.MulAdd(Vector512.Load(w3 + j), b, c3);
            }

            y[0] = Tail(w0, x, j, cols, Vector512.Sum(c0));
            y[1] = Tail(w1, x, j, cols, Vector512.Sum(c1));
            y[2] = Tail(w2, x, j, cols, Vector512.Sum(c2));
            y[3] = Tail(w3, x, j, cols, Vector512.Sum(c3));
        }

        public static float Dot(float* w, float* x, int cols)
        {
            var acc = Vector512<float>.Zero;
            var j = 0;
            for (; j + N <= cols; j += N)
            {
                acc = Simd.MulAdd(Vector512.Load(w + j), Vector512.Load(x + j), acc);
            }

            return Tail(w, x, j, cols, Vector512.Sum(acc));
        }
    }
}
