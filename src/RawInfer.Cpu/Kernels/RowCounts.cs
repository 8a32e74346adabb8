namespace RawInfer.Cpu.Kernels;

/// <summary>
/// A register tile's row count as a type, so a kernel generic over it is compiled once per count with the count a
/// constant (its unused accumulators and branches drop out).
/// </summary>
internal interface IRowCount
{
    static abstract int Value { get; }
}

internal readonly struct One : IRowCount
{
    public static int Value => 1;
}

internal readonly struct Two : IRowCount
{
    public static int Value => 2;
}

internal readonly struct Three : IRowCount
{
    public static int Value => 3;
}

internal readonly struct Four : IRowCount
{
    public static int Value => 4;
}

internal readonly struct Five : IRowCount
{
    public static int Value => 5;
}

internal readonly struct Six : IRowCount
{
    public static int Value => 6;
}
