using System.Reflection;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.CPU;
using ILGPU.Runtime.Cuda;

namespace RawInfer.Gpu.ILGpu;

/// <summary>
/// Compiles ILGPU kernels to PTX text without a GPU or a CUDA driver: a context with only a CPU device and ILGPU's
/// PTX backend for a chosen architecture. Lets CI check that every kernel is expressible for the device, and
/// shows what ILGPU generates.
/// </summary>
public static class IlgpuPtx
{
    /// <summary>
    /// PTX ISA 7.8 (CUDA 11.8): the newest that ptxas 11.8 on the CPU machines accepts, and enough for sm_90.
    /// On a device ILGPU picks the ISA from the driver by itself.
    /// </summary>
    public static CudaInstructionSet DefaultInstructionSet => CudaInstructionSet.ISA_78;

    /// <summary>PTX of one kernel method for <paramref name="architecture"/> with <see cref="DefaultInstructionSet"/>.</summary>
    public static string Compile(MethodInfo kernelMethod, CudaArchitecture architecture)
    {
        ArgumentNullException.ThrowIfNull(kernelMethod);
        return Compile([kernelMethod], architecture, DefaultInstructionSet)[0];
    }

    /// <summary>
    /// PTX of each kernel method, in order, through one context and backend. A method whose first parameter is an
    /// ILGPU index (Index1D, …) is compiled as implicitly grouped, any other as explicitly grouped.
    /// </summary>
    public static IReadOnlyList<string> Compile(
        IReadOnlyList<MethodInfo> kernelMethods, CudaArchitecture architecture, CudaInstructionSet instructionSet)
    {
        ArgumentNullException.ThrowIfNull(kernelMethods);
        using var context = Context.Create(builder => builder.CPU(new CPUDevice(32, 1, 1)));
        using var backend = new PTXBackend(
            context, new CudaCapabilityContext(architecture), architecture, instructionSet, nvvmAPI: null);
        var results = new string[kernelMethods.Count];
        for (var i = 0; i < kernelMethods.Count; i++)
        {
            var method = kernelMethods[i];
            var entry = IsImplicitlyGrouped(method)
                ? EntryPointDescription.FromImplicitlyGroupedKernel(method)
                : EntryPointDescription.FromExplicitlyGroupedKernel(method);
            var compiled = backend.Compile(entry, KernelSpecialization.Empty);
            results[i] = ((PTXCompiledKernel)compiled).PTXAssembly;
        }

        return results;
    }

    private static bool IsImplicitlyGrouped(MethodInfo method)
    {
        var parameters = method.GetParameters();
        return parameters.Length > 0 && typeof(IIndex).IsAssignableFrom(parameters[0].ParameterType);
    }
}
