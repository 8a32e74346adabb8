using System.Runtime.CompilerServices;

namespace RawInfer.Protocol.Tests;

/// <summary>
/// Runs the fuzz entry point over the checked-in corpus (valid frames and their mutations) and over fresh
/// mutations from a fixed seed: <see cref="FrameFuzzer.Fuzz"/> may only ever throw nothing.
/// </summary>
public class FuzzCorpusTests
{
    [Fact]
    public void The_decoder_survives_every_corpus_input()
    {
        var files = Directory.GetFiles(CorpusDir());
        Assert.True(files.Length >= 30, $"the corpus has {files.Length} files");
        foreach (var file in files)
        {
            var data = File.ReadAllBytes(file);
            var e = Record.Exception(() => FrameFuzzer.Fuzz(data));
            Assert.True(e is null, $"{Path.GetFileName(file)}: {e}");
        }
    }

    [Fact]
    public void The_decoder_survives_seeded_mutations_of_every_sample()
    {
        var random = new Random(1234);
        foreach (var sample in SampleFrames.All)
        {
            var valid = FrameWriter.ToArray(sample.RequestId, sample.Payload);
            for (var round = 0; round < 300; round++)
            {
                var data = Mutate(valid, random);
                var e = Record.Exception(() => FrameFuzzer.Fuzz(data));
                Assert.True(e is null, $"{sample.Name} mutation {round} ({Convert.ToHexString(data)}): {e}");
            }
        }
    }

    /// <summary>Regenerates the seed corpus: `RawInfer.Protocol.Tests -method "*Write_seed_corpus*" -explicit only`.</summary>
    [Fact(Explicit = true)]
    public void Write_seed_corpus()
    {
        var dir = CorpusDir();
        var random = new Random(99);
        foreach (var sample in SampleFrames.All)
        {
            var valid = FrameWriter.ToArray(sample.RequestId, sample.Payload);
            File.WriteAllBytes(Path.Combine(dir, $"{sample.Name}.bin"), valid);
            File.WriteAllBytes(Path.Combine(dir, $"{sample.Name}-mut.bin"), Mutate(valid, random));
        }

        File.WriteAllBytes(Path.Combine(dir, "all-frames.bin"), SampleFrames.All.SelectMany(s => FrameWriter.ToArray(s.RequestId, s.Payload)).ToArray());
        File.WriteAllBytes(Path.Combine(dir, "huge-length.bin"), MalformedFrameTests.Header(uint.MaxValue, FrameType.Submit, 0, 0, 1));
        File.WriteAllBytes(Path.Combine(dir, "zero-length-submit.bin"), MalformedFrameTests.Header(0, FrameType.Submit, 1, 0, 1));
        File.WriteAllBytes(Path.Combine(dir, "truncated-header.bin"), new byte[] { 4, 0, 0 });
    }

    /// <summary>Bit flips, byte overwrites with edge values, truncation, duplication or junk appended.</summary>
    internal static byte[] Mutate(byte[] valid, Random random)
    {
        var data = (byte[])valid.Clone();
        switch (random.Next(5))
        {
            case 0:
                data[random.Next(data.Length)] ^= (byte)(1 << random.Next(8));
                break;
            case 1:
                data[random.Next(data.Length)] = (byte)(random.Next(2) == 0 ? 0xFF : 0x00);
                break;
            case 2:
                return data[..random.Next(data.Length)];
            case 3:
                return [.. data, .. data];
            default:
                var junk = new byte[random.Next(1, 16)];
                random.NextBytes(junk);
                return [.. data, .. junk];
        }

        if (random.Next(3) == 0)
        {
            data[random.Next(Math.Min(data.Length, ProtocolConstants.HeaderSize))] = (byte)random.Next(256);
        }

        return data;
    }

    private static string CorpusDir([CallerFilePath] string thisFile = "") =>
        Path.Combine(Path.GetDirectoryName(thisFile)!, "FuzzCorpus");
}
