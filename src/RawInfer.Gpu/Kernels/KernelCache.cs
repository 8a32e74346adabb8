using System.Buffers.Binary;
using System.Security.Cryptography;

namespace RawInfer.Gpu.Kernels;

/// <summary>
/// One cache entry per file: a 52-byte header (magic "RIKC", format version, image kind, payload length,
/// SHA-256 of the payload) and the payload. Anything that does not check out is reported damaged, never used.
/// Writes go to a temporary file that is then renamed, so a crash never leaves a half-written entry under the key.
/// </summary>
internal static class KernelCache
{
    /// <summary>Part of every cache key: bump when the entry format or the compile recipe changes.</summary>
    public const string FormatTag = "rawinfer-kernel-cache-v1";

    private const uint Magic = 0x434B4952; // "RIKC" little-endian
    private const int Version = 1;
    private const int HeaderBytes = 52; // magic 4, version 4, kind 4, payload length 8, payload SHA-256 32

    public enum ReadResult
    {
        Missing,
        Hit,
        Damaged,
    }

    public static ReadResult TryRead(string path, KernelImageKind kind, out byte[] payload)
    {
        payload = [];
        byte[] bytes;
        try
        {
            if (!File.Exists(path))
            {
                return ReadResult.Missing;
            }

            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return ReadResult.Missing; // unreadable: compile instead
        }

        if (bytes.Length <= HeaderBytes
            || BinaryPrimitives.ReadUInt32LittleEndian(bytes) != Magic
            || BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(4)) != Version
            || BinaryPrimitives.ReadInt32LittleEndian(bytes.AsSpan(8)) != (int)kind
            || BinaryPrimitives.ReadInt64LittleEndian(bytes.AsSpan(12)) != bytes.Length - HeaderBytes)
        {
            return ReadResult.Damaged;
        }

        var body = bytes.AsSpan(HeaderBytes);
        Span<byte> digest = stackalloc byte[32];
        SHA256.HashData(body, digest);
        if (!digest.SequenceEqual(bytes.AsSpan(20, 32)))
        {
            return ReadResult.Damaged;
        }

        payload = body.ToArray();
        return ReadResult.Hit;
    }

    /// <summary>Stores an entry; a cache that cannot be written is skipped (it only saves time).</summary>
    public static void TryWrite(string directory, string path, KernelImageKind kind, ReadOnlySpan<byte> payload)
    {
        var bytes = new byte[HeaderBytes + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, Magic);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(4), Version);
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(8), (int)kind);
        BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(12), payload.Length);
        SHA256.HashData(payload, bytes.AsSpan(20, 32));
        payload.CopyTo(bytes.AsSpan(HeaderBytes));
        var temporary = path + "." + Guid.NewGuid().ToString("N") + ".tmp";
        try
        {
            Directory.CreateDirectory(directory);
            File.WriteAllBytes(temporary, bytes);
            File.Move(temporary, path, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temporary);
        }
    }

    private static void TryDelete(string path)
    {
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // best effort: a stray temporary file is harmless
        }
    }
}
