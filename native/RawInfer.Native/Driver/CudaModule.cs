using System.Runtime.InteropServices;
using System.Text;
using RawInfer.Native.Interop;

namespace RawInfer.Native;

/// <summary>A loaded module (PTX JIT-compiled by the driver, or a cubin) and the kernels it holds.</summary>
public sealed unsafe class CudaModule : CudaHandle
{
    private const int JitLogBytes = 16 * 1024;

    private CudaModule(CudaContext context, ReadOnlySpan<byte> image)
        : base(context)
    {
        try
        {
            context.MakeCurrent();
            SetHandle(Load(image));
        }
        catch
        {
            DetachContext();
            throw;
        }
    }

    /// <summary>
    /// Loads a cubin/fatbin (ELF or fatbin magic) or PTX text (a NUL terminator is added when missing). A load
    /// failure throws <see cref="CudaModuleLoadException"/> carrying the driver's JIT error log.
    /// </summary>
    public static CudaModule LoadData(CudaContext context, ReadOnlySpan<byte> image)
    {
        ArgumentNullException.ThrowIfNull(context);
        if (image.IsEmpty)
        {
            throw new ArgumentException("module image is empty", nameof(image));
        }

        return new CudaModule(context, image);
    }

    /// <summary>Loads PTX text.</summary>
    public static CudaModule LoadPtx(CudaContext context, string ptx)
    {
        ArgumentException.ThrowIfNullOrEmpty(ptx);
        return LoadData(context, Encoding.UTF8.GetBytes(ptx + "\0"));
    }

    /// <summary>Whether <paramref name="image"/> is binary (ELF cubin or fatbin) rather than PTX text.</summary>
    internal static bool IsBinaryImage(ReadOnlySpan<byte> image) =>
        image.StartsWith((ReadOnlySpan<byte>)[0x7F, (byte)'E', (byte)'L', (byte)'F'])
        || image.StartsWith((ReadOnlySpan<byte>)[0x50, 0xED, 0x55, 0xBA]); // fatbin magic 0xBA55ED50, little-endian

    /// <summary>Looks up an extern "C" kernel by name.</summary>
    public CudaFunction GetFunction(string name)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        var utf8 = Encoding.UTF8.GetBytes(name + "\0");
        nint function;
        int result;
        fixed (byte* namePointer = utf8)
        {
            result = CudaApi.cuModuleGetFunction(&function, handle, namePointer);
        }

        GC.KeepAlive(this);
        if (result != 0)
        {
            throw new CudaException(
                "cuModuleGetFunction", result, Check.CudaErrorName(result), null, $"kernel '{name}' (is it extern \"C\"?)");
        }

        return new CudaFunction(this, name, function);
    }

    private protected override bool ReleaseNative() => CudaApi.cuModuleUnload(handle) == 0;

    private static nint Load(ReadOnlySpan<byte> image)
    {
        // PTX must be NUL-terminated; copy only when the caller's text lacks the terminator.
        byte[]? terminated = null;
        if (!IsBinaryImage(image) && image[^1] != 0)
        {
            terminated = new byte[image.Length + 1];
            image.CopyTo(terminated);
        }

        var errorLog = new byte[JitLogBytes];
        var options = stackalloc int[2] { CudaApi.JitErrorLogBuffer, CudaApi.JitErrorLogBufferSizeBytes };
        var values = stackalloc void*[2];
        nint module;
        int result;
        fixed (byte* imagePointer = terminated ?? image)
        fixed (byte* logPointer = errorLog)
        {
            values[0] = logPointer;
            values[1] = (void*)(nint)JitLogBytes; // a size option's value travels in the pointer itself
            result = CudaApi.cuModuleLoadDataEx(&module, imagePointer, 2, options, values);
        }

        if (result != 0)
        {
            var length = Array.IndexOf(errorLog, (byte)0);
            var log = Encoding.UTF8.GetString(errorLog, 0, length < 0 ? errorLog.Length : length).Trim();
            throw new CudaModuleLoadException("cuModuleLoadDataEx", result, Check.CudaErrorName(result), null, log);
        }

        return module;
    }
}

/// <summary>A kernel in a <see cref="CudaModule"/>; valid while the module is.</summary>
public sealed unsafe class CudaFunction
{
    private readonly nint _function;

    internal CudaFunction(CudaModule module, string name, nint function)
    {
        Module = module;
        Name = name;
        _function = function;
    }

    /// <summary>The module holding the kernel.</summary>
    public CudaModule Module { get; }

    /// <summary>The kernel's entry name.</summary>
    public string Name { get; }

    /// <summary>
    /// Queues the kernel on <paramref name="stream"/> with the values in <paramref name="arguments"/> (in the
    /// kernel's parameter order). The context must be current on this thread. Allocates nothing.
    /// </summary>
    public void Launch(Dim3 grid, Dim3 block, int sharedBytes, CudaStream stream, ref KernelArguments arguments)
    {
        ArgumentNullException.ThrowIfNull(stream);
        System.Diagnostics.Debug.Assert(grid.X > 0 && grid.Y > 0 && grid.Z > 0, "grid dimensions must be positive");
        System.Diagnostics.Debug.Assert(block.X > 0 && block.Y > 0 && block.Z > 0, "block dimensions must be positive");
        System.Diagnostics.Debug.Assert(sharedBytes >= 0, "dynamic shared memory cannot be negative");

        var pointers = stackalloc void*[KernelArguments.Capacity];
        fixed (ulong* slots = &arguments.Slots[0])
        {
            arguments.WritePointers(pointers, slots);
            Check.Cuda(CudaApi.cuLaunchKernel(
                _function,
                (uint)grid.X, (uint)grid.Y, (uint)grid.Z,
                (uint)block.X, (uint)block.Y, (uint)block.Z,
                (uint)sharedBytes, stream.DangerousGetHandle(), pointers, null));
        }

        GC.KeepAlive(stream);
        GC.KeepAlive(Module);
    }

    /// <summary>Reads a CUfunction_attribute (registers, local memory, maximum block size...).</summary>
    public int GetAttribute(CudaFunctionAttribute attribute)
    {
        int value;
        Check.Cuda(CudaApi.cuFuncGetAttribute(&value, (int)attribute, _function));
        GC.KeepAlive(Module);
        return value;
    }

    /// <summary>Allows launches with more than 48 KiB of dynamic shared memory (up to the device's opt-in limit).</summary>
    public void SetMaxDynamicSharedMemory(int bytes)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(bytes);
        Check.Cuda(CudaApi.cuFuncSetAttribute(_function, (int)CudaFunctionAttribute.MaxDynamicSharedSizeBytes, bytes));
        GC.KeepAlive(Module);
    }
}

/// <summary>CUfunction_attribute values (cuda.h).</summary>
public enum CudaFunctionAttribute
{
    /// <summary>CU_FUNC_ATTRIBUTE_MAX_THREADS_PER_BLOCK.</summary>
    MaxThreadsPerBlock = 0,

    /// <summary>CU_FUNC_ATTRIBUTE_SHARED_SIZE_BYTES (static shared memory).</summary>
    SharedSizeBytes = 1,

    /// <summary>CU_FUNC_ATTRIBUTE_LOCAL_SIZE_BYTES (spills and local arrays per thread).</summary>
    LocalSizeBytes = 3,

    /// <summary>CU_FUNC_ATTRIBUTE_NUM_REGS.</summary>
    NumRegisters = 4,

    /// <summary>CU_FUNC_ATTRIBUTE_PTX_VERSION (major*10+minor).</summary>
    PtxVersion = 5,

    /// <summary>CU_FUNC_ATTRIBUTE_BINARY_VERSION (major*10+minor).</summary>
    BinaryVersion = 6,

    /// <summary>CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES.</summary>
    MaxDynamicSharedSizeBytes = 8,
}

/// <summary>Grid or block dimensions of a launch.</summary>
public readonly record struct Dim3(int X, int Y = 1, int Z = 1)
{
    /// <summary>A one-dimensional size.</summary>
    public static implicit operator Dim3(int x) => new(x);

    /// <summary>A one-dimensional size (the named form of the conversion).</summary>
    public static Dim3 FromInt32(int x) => new(x);
}
