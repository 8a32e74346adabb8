using RawInfer.Models.Gguf;
using Xunit;

namespace RawInfer.Models.Tests.Gguf;

/// <summary>
/// Random damage to a valid model file: the reader (and the llama loader on top) either loads it or throws
/// <see cref="ModelFormatException"/>; no other exception, no crash, no read outside the image. A seeded loop
/// stands in for an FsCheck property until the test project references FsCheck (see the report).
/// </summary>
public sealed class GgufMutationTests
{
    private static readonly byte[] Valid = GgufTestFiles.SyntheticModelBytes(TensorType.Q8_0, config:
        new ModelConfig(Dim: 32, HiddenDim: 64, NumLayers: 1, NumHeads: 4, NumKvHeads: 2, VocabSize: 259, MaxSeqLen: 16, SharedClassifier: true));

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void Mutated_files_load_or_throw_the_format_error(int seed)
    {
        var random = new Random(seed);
        int loaded = 0;
        for (int trial = 0; trial < 500; trial++)
        {
            byte[] image = Mutate(Valid, random);
            try
            {
                using var file = GgufFile.Parse(image, "mutated.gguf");
                var model = GgufLlamaLoader.Load(file);
                _ = model.Config.ParameterCount;
                loaded++;
            }
            catch (ModelFormatException)
            {
                // the only acceptable failure
            }
        }

        // Mutations in tensor data leave the file loadable; if nothing ever loads the test is not probing much.
        Assert.InRange(loaded, 1, 499);
    }

    private static byte[] Mutate(byte[] valid, Random random)
    {
        var bytes = new List<byte>(valid);

        // Most interesting bytes are in the header (metadata, tensor infos): aim half the edits there.
        int headerEnd = Math.Min(bytes.Count, 4096);
        int edits = random.Next(1, 4);
        for (int e = 0; e < edits && bytes.Count > 0; e++)
        {
            int at = random.Next(2) == 0 ? random.Next(headerEnd) : random.Next(bytes.Count);
            at = Math.Min(at, bytes.Count - 1);
            switch (random.Next(5))
            {
                case 0:
                    bytes[at] ^= (byte)(1 << random.Next(8));
                    break;
                case 1:
                    bytes[at] = (byte)random.Next(256);
                    break;
                case 2:
                    bytes.RemoveRange(at, bytes.Count - at); // truncation
                    break;
                case 3:
                    bytes.InsertRange(at, RandomBytes(random, random.Next(1, 9)));
                    break;
                default:
                    bytes.RemoveRange(at, Math.Min(random.Next(1, 9), bytes.Count - at));
                    break;
            }
        }

        return [.. bytes];
    }

    private static byte[] RandomBytes(Random random, int count)
    {
        var b = new byte[count];
        random.NextBytes(b);
        return b;
    }
}
