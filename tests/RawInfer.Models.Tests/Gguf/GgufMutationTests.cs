using FsCheck;
using FsCheck.Fluent;
using FsCheck.Xunit;
using RawInfer.Models.Gguf;
using Xunit;

namespace RawInfer.Models.Tests.Gguf;

/// <summary>
/// Random damage to a valid model file: the reader (and the llama loader on top) either loads it or throws
/// <see cref="ModelFormatException"/>; no other exception, no crash, no read outside the image. An FsCheck property
/// over lists of edits (bit flips, byte overwrites, truncations, insertions, deletions), so a failure shrinks to the
/// fewest, smallest edits that still break the reader.
/// </summary>
public sealed class GgufMutationTests
{
    private static readonly byte[] Valid = GgufTestFiles.SyntheticModelBytes(TensorType.Q8_0, config:
        new ModelConfig(Dim: 32, HiddenDim: 64, NumLayers: 1, NumHeads: 4, NumKvHeads: 2, VocabSize: 259, MaxSeqLen: 16, SharedClassifier: true));

    private enum EditKind
    {
        FlipBit,
        Overwrite,
        Truncate,
        Insert,
        Delete,
    }

    /// <summary>One edit; <see cref="Position"/> is taken modulo the current length, <see cref="Value"/> picks the bit, byte or count.</summary>
    private sealed record Edit(EditKind Kind, int Position, byte Value)
    {
        public override string ToString() => $"{Kind}@{Position}:{Value}";
    }

    [Property(MaxTest = 2000)]
    public Property Mutated_files_load_or_throw_the_format_error() =>
        Prop.ForAll(Edits(), edits =>
        {
            var image = Apply(Valid, edits);
            try
            {
                using var file = GgufFile.Parse(image, "mutated.gguf");
                using var model = GgufLlamaLoader.Load(file);
                _ = model.Config.ParameterCount;
            }
            catch (ModelFormatException)
            {
                // the only acceptable failure
            }
        });

    /// <summary>The generator does reach both outcomes, so the property is not vacuous.</summary>
    [Fact]
    public void Edits_sometimes_leave_the_file_loadable_and_sometimes_break_it()
    {
        var samples = Edits().Generator.Sample(300, 200);
        int loaded = 0;
        foreach (var edits in samples)
        {
            try
            {
                using var file = GgufFile.Parse(Apply(Valid, edits), "mutated.gguf");
                using var model = GgufLlamaLoader.Load(file);
                loaded++;
            }
            catch (ModelFormatException)
            {
            }
        }

        Assert.InRange(loaded, 1, samples.Length - 1);
    }

    private static Arbitrary<Edit[]> Edits()
    {
        // Most interesting bytes are in the header (metadata, tensor infos): half the positions fall in the first 4 KiB.
        var position = Gen.OneOf(Gen.Choose(0, 4095), Gen.Choose(0, int.MaxValue));
        var edit =
            from kind in Gen.Elements(EditKind.FlipBit, EditKind.Overwrite, EditKind.Truncate, EditKind.Insert, EditKind.Delete)
            from at in position
            from value in Gen.Choose(0, 255)
            select new Edit(kind, at, (byte)value);
        var edits =
            from count in Gen.Choose(1, 3)
            from list in Gen.ArrayOf(edit, count)
            select list;
        return Arb.From(edits, Shrink);
    }

    /// <summary>Fewer edits first, then each edit moved towards the start of the file.</summary>
    private static IEnumerable<Edit[]> Shrink(Edit[] edits)
    {
        for (var i = 0; i < edits.Length && edits.Length > 1; i++)
        {
            yield return [.. edits[..i], .. edits[(i + 1)..]];
        }

        for (var i = 0; i < edits.Length; i++)
        {
            if (edits[i].Position > 0)
            {
                var moved = (Edit[])edits.Clone();
                moved[i] = edits[i] with { Position = edits[i].Position / 2 };
                yield return moved;
            }
        }
    }

    private static byte[] Apply(byte[] valid, Edit[] edits)
    {
        var bytes = new List<byte>(valid);
        foreach (var e in edits)
        {
            if (bytes.Count == 0)
            {
                break;
            }

            var at = (int)((uint)e.Position % (uint)bytes.Count);
            switch (e.Kind)
            {
                case EditKind.FlipBit:
                    bytes[at] ^= (byte)(1 << (e.Value % 8));
                    break;
                case EditKind.Overwrite:
                    bytes[at] = e.Value;
                    break;
                case EditKind.Truncate:
                    bytes.RemoveRange(at, bytes.Count - at);
                    break;
                case EditKind.Insert:
                    for (var i = 0; i < 1 + (e.Value % 8); i++)
                    {
                        bytes.Insert(at, (byte)(e.Value * (i + 1)));
                    }

                    break;
                default:
                    bytes.RemoveRange(at, Math.Min(1 + (e.Value % 8), bytes.Count - at));
                    break;
            }
        }

        return [.. bytes];
    }
}
