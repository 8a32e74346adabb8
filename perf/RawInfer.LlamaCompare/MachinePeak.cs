using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace RawInfer.LlamaCompare;

/// <summary>
/// Quick measurements of the two ceilings on this machine with a given thread count: memory bandwidth by a
/// STREAM-style triad (a = b + s·c over arrays at least twice the last-level cache, counted as 12 bytes per element: two
/// reads and one write, write-allocate traffic not counted, as STREAM does), and FP32 FMA throughput by a loop of
/// independent vector FMAs held in registers. Medians of several repetitions; both are noisy on a shared machine.
/// Decode only reads its weights, so <see cref="ReadGBs"/> also times a read-only stream: on the 2-core Zen 5 VM
/// (2026-12-05) it gave 55–83 GB/s in passes where the triad gave 42–74.
/// </summary>
internal static partial class MachinePeak
{
    private const long MinTriadBytesPerThread = 32L << 20; // per array
    private const long MaxTriadBytes = 1L << 30;            // per array
    private const int Repetitions = 9;

    /// <summary>
    /// Passes of the triad per timed run: one pass over 3 × 64 MiB took a few milliseconds on the Zen 5 VM, where
    /// starting and joining the threads is not negligible (2026-12-05; earlier figures timed one pass).
    /// </summary>
    private const int TriadPasses = 4;

    /// <summary>Median triad bandwidth in GB/s (1e9 bytes per second), <see cref="TriadPasses"/> passes per timed run.</summary>
    public static double TriadGBs(int threads)
    {
        var perThread = TriadElementsPerThread(threads, LastLevelCacheBytes());
        var n = perThread * threads;
        var a = GC.AllocateUninitializedArray<float>(n);
        var b = new float[n];
        var c = new float[n];
        b.AsSpan().Fill(1f);
        c.AsSpan().Fill(2f);
        var rates = new double[Repetitions];
        for (var r = -1; r < Repetitions; r++)
        {
            var seconds = RunOnThreads(threads, k =>
            {
                var start = k * perThread;
                for (var pass = 0; pass < TriadPasses; pass++)
                {
                    Triad(a.AsSpan(start, perThread), b.AsSpan(start, perThread), c.AsSpan(start, perThread), 3f);
                }
            });
            if (r >= 0)
            {
                rates[r] = 12.0 * n * TriadPasses / seconds / 1e9;
            }
        }

        return Median(rates);
    }

    /// <summary>
    /// Median read-only bandwidth in GB/s: each thread sums its share of one buffer as large as two triad arrays (so
    /// at least four times the last-level cache), <see cref="ReadPasses"/> times, with four vector accumulators. The
    /// buffer is 2 MiB aligned and advised for transparent huge pages, as RawInfer's weights are.
    /// </summary>
    public static unsafe double ReadGBs(int threads)
    {
        var perThread = 2L * TriadElementsPerThread(threads, LastLevelCacheBytes());
        var n = perThread * threads;
        var bytes = (nuint)(n * sizeof(float));
        var buffer = (float*)NativeMemory.AlignedAlloc(bytes, HugePageBytes);
        try
        {
            if (OperatingSystem.IsLinux())
            {
                _ = Madvise(buffer, bytes, MadvHugePage); // advice only
            }

            new Span<float>(buffer, checked((int)n)).Fill(1f);
            var sink = new float[threads];
            var rates = new double[Repetitions];
            for (var r = -1; r < Repetitions; r++)
            {
                var seconds = RunOnThreads(threads, k =>
                {
                    for (var pass = 0; pass < ReadPasses; pass++)
                    {
                        sink[k] += Sum(buffer + (k * perThread), perThread);
                    }
                });
                if (r >= 0)
                {
                    rates[r] = 4.0 * n * ReadPasses / seconds / 1e9;
                }
            }

            return Median(rates);
        }
        finally
        {
            NativeMemory.AlignedFree(buffer);
        }
    }

    /// <summary>Passes over the buffer per timed run: one pass of 128 MiB took ~3 ms, close to the cost of starting the threads.</summary>
    private const int ReadPasses = 8;

    private const nuint HugePageBytes = 2 << 20;
    private const int MadvHugePage = 14;

    [LibraryImport("libc", EntryPoint = "madvise")]
    private static unsafe partial int Madvise(void* address, nuint length, int advice);

    /// <summary>
    /// Σ a[i], through <see cref="System.Numerics.Vector{T}"/> with four accumulators: a memory-bound loop, where the
    /// vector width does not set the pace (two 32-byte loads a cycle are several times what DRAM delivers a core).
    /// </summary>
    private static unsafe float Sum(float* a, long length)
    {
        var width = System.Numerics.Vector<float>.Count;
        System.Numerics.Vector<float> s0 = default, s1 = default, s2 = default, s3 = default;
        long i = 0;
        for (; i <= length - (4 * width); i += 4 * width)
        {
            s0 += System.Numerics.Vector.Load(a + i);
            s1 += System.Numerics.Vector.Load(a + i + width);
            s2 += System.Numerics.Vector.Load(a + i + (2 * width));
            s3 += System.Numerics.Vector.Load(a + i + (3 * width));
        }

        var sum = System.Numerics.Vector.Sum((s0 + s1) + (s2 + s3));
        for (; i < length; i++)
        {
            sum += a[i];
        }

        return sum;
    }

    /// <summary>
    /// Floats per array per thread: 32 MiB, or more so that each array is at least twice the last-level cache (up to
    /// 1 GiB an array). On a 2-core Xeon VM with a 260 MiB L3, 3 × 64 MiB of arrays were largely cached and the
    /// "bandwidth" was partly L3's.
    /// </summary>
    internal static int TriadElementsPerThread(int threads, long lastLevelCacheBytes)
    {
        var perThread = Math.Max(MinTriadBytesPerThread, ((2 * lastLevelCacheBytes) + threads - 1) / threads);
        perThread = Math.Min(perThread, Math.Max(MinTriadBytesPerThread, MaxTriadBytes / threads));
        return (int)(perThread / sizeof(float));
    }

    /// <summary>Bytes of one triad array with <paramref name="threads"/> threads on this machine.</summary>
    public static long TriadArrayBytes(int threads) => (long)TriadElementsPerThread(threads, LastLevelCacheBytes()) * threads * sizeof(float);

    /// <summary>Size of the highest-level cache of CPU 0 (Linux sysfs), or 0 when it cannot be read.</summary>
    internal static long LastLevelCacheBytes()
    {
        var largest = 0L;
        var best = -1;
        for (var i = 0; i < 16; i++)
        {
            var dir = $"/sys/devices/system/cpu/cpu0/cache/index{i}";
            if (!File.Exists(Path.Combine(dir, "level")) || !File.Exists(Path.Combine(dir, "size")))
            {
                continue;
            }

            if (!int.TryParse(File.ReadAllText(Path.Combine(dir, "level")).Trim(), out var level))
            {
                continue;
            }

            var size = ParseCacheSize(File.ReadAllText(Path.Combine(dir, "size")));
            if (size > 0 && level > best)
            {
                (best, largest) = (level, size);
            }
            else if (size > 0 && level == best)
            {
                largest = Math.Max(largest, size);
            }
        }

        return largest;
    }

    /// <summary>"266240K", "32M", "1G" or a byte count → bytes; 0 when unreadable.</summary>
    internal static long ParseCacheSize(string text)
    {
        text = text.Trim();
        var multiplier = text.Length == 0 ? 1L : char.ToUpperInvariant(text[^1]) switch
        {
            'K' => 1L << 10,
            'M' => 1L << 20,
            'G' => 1L << 30,
            _ => 1L,
        };
        if (multiplier != 1)
        {
            text = text[..^1];
        }

        return long.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var value)
            ? value * multiplier
            : 0;
    }

    /// <summary>Median FP32 FMA throughput in GFLOP/s (2 FLOPs per lane per FMA).</summary>
    public static double FmaGFlops(int threads)
    {
        const long iterations = 20_000_000;
        var lanes = Vector512.IsHardwareAccelerated ? Vector512<float>.Count : Vector256<float>.Count;
        var sink = new float[threads];
        var rates = new double[Repetitions];
        for (var r = -1; r < Repetitions; r++)
        {
            var seconds = RunOnThreads(threads, k => sink[k] = Vector512.IsHardwareAccelerated ? Fma512(iterations) : Fma256(iterations));
            if (r >= 0)
            {
                rates[r] = 2.0 * Accumulators * lanes * iterations * threads / seconds / 1e9;
            }
        }

        return Median(rates);
    }

    private const int Accumulators = 12; // enough independent chains to cover FMA latency × issue width

    private static void Triad(Span<float> a, ReadOnlySpan<float> b, ReadOnlySpan<float> c, float s)
    {
        var i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var scale = Vector512.Create(s);
            for (; i <= a.Length - Vector512<float>.Count; i += Vector512<float>.Count)
            {
                Vector512.FusedMultiplyAdd(Vector512.Create(c[i..]), scale, Vector512.Create(b[i..])).CopyTo(a[i..]);
            }
        }
        else if (Vector256.IsHardwareAccelerated)
        {
            var scale = Vector256.Create(s);
            for (; i <= a.Length - Vector256<float>.Count; i += Vector256<float>.Count)
            {
                Vector256.FusedMultiplyAdd(Vector256.Create(c[i..]), scale, Vector256.Create(b[i..])).CopyTo(a[i..]);
            }
        }

        for (; i < a.Length; i++)
        {
            a[i] = b[i] + (s * c[i]);
        }
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Fma512(long iterations)
    {
        var x = Vector512.Create(0.999f);
        var y = Vector512.Create(1e-7f);
        Vector512<float> a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector512.FusedMultiplyAdd(a0, x, y); a1 = Vector512.FusedMultiplyAdd(a1, x, y);
            a2 = Vector512.FusedMultiplyAdd(a2, x, y); a3 = Vector512.FusedMultiplyAdd(a3, x, y);
            a4 = Vector512.FusedMultiplyAdd(a4, x, y); a5 = Vector512.FusedMultiplyAdd(a5, x, y);
            a6 = Vector512.FusedMultiplyAdd(a6, x, y); a7 = Vector512.FusedMultiplyAdd(a7, x, y);
            a8 = Vector512.FusedMultiplyAdd(a8, x, y); a9 = Vector512.FusedMultiplyAdd(a9, x, y);
            a10 = Vector512.FusedMultiplyAdd(a10, x, y); a11 = Vector512.FusedMultiplyAdd(a11, x, y);
        }

        return Vector512.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private static float Fma256(long iterations)
    {
        var x = Vector256.Create(0.999f);
        var y = Vector256.Create(1e-7f);
        Vector256<float> a0 = x, a1 = x, a2 = x, a3 = x, a4 = x, a5 = x, a6 = x, a7 = x, a8 = x, a9 = x, a10 = x, a11 = x;
        for (long i = 0; i < iterations; i++)
        {
            a0 = Vector256.FusedMultiplyAdd(a0, x, y); a1 = Vector256.FusedMultiplyAdd(a1, x, y);
            a2 = Vector256.FusedMultiplyAdd(a2, x, y); a3 = Vector256.FusedMultiplyAdd(a3, x, y);
            a4 = Vector256.FusedMultiplyAdd(a4, x, y); a5 = Vector256.FusedMultiplyAdd(a5, x, y);
            a6 = Vector256.FusedMultiplyAdd(a6, x, y); a7 = Vector256.FusedMultiplyAdd(a7, x, y);
            a8 = Vector256.FusedMultiplyAdd(a8, x, y); a9 = Vector256.FusedMultiplyAdd(a9, x, y);
            a10 = Vector256.FusedMultiplyAdd(a10, x, y); a11 = Vector256.FusedMultiplyAdd(a11, x, y);
        }

        return Vector256.Sum(a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7 + a8 + a9 + a10 + a11);
    }

    /// <summary>Runs body(k) on <paramref name="threads"/> dedicated threads, started together; seconds until all end.</summary>
    private static double RunOnThreads(int threads, Action<int> body)
    {
        using var start = new Barrier(threads + 1);
        var workers = new Thread[threads];
        for (var k = 0; k < threads; k++)
        {
            var index = k;
            workers[k] = new Thread(() =>
            {
                start.SignalAndWait();
                body(index);
            }) { IsBackground = true };
            workers[k].Start();
        }

        start.SignalAndWait();
        var clock = Stopwatch.StartNew();
        foreach (var worker in workers)
        {
            worker.Join();
        }

        return clock.Elapsed.TotalSeconds;
    }

    internal static double Median(double[] values)
    {
        var sorted = (double[])values.Clone();
        Array.Sort(sorted);
        var mid = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
    }
}
