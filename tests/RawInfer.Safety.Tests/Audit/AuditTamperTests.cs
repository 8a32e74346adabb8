using RawInfer.Safety.Audit;
using Xunit;

namespace RawInfer.Safety.Tests.Audit;

/// <summary>Verification names the exact first bad sequence and its offset for flipped bytes, deletions and swaps.</summary>
public sealed class AuditTamperTests : IDisposable
{
    private readonly TempDir _dir = new();
    private static readonly AuditLogOptions SmallSegments = new() { SegmentBytes = 600, CheckpointEvery = 1 };

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task A_clean_log_across_rotated_segments_verifies()
    {
        await AuditTestLog.WriteAsync(_dir.Path, 20, SmallSegments);
        var result = AuditReader.Verify(_dir.Path);
        Assert.True(result.IsValid, result.Damage?.ToString());
        Assert.True(Directory.GetFiles(_dir.Path, "audit-*.seg").Length > 2);
        Assert.Equal(1, result.FirstSequence);
        Assert.Equal(21, result.Records); // + the LogOpened record
    }

    [Fact]
    public async Task Flipping_any_byte_of_any_segment_is_reported_at_the_record_holding_it()
    {
        await AuditTestLog.WriteAsync(_dir.Path, 8, SmallSegments);
        var layout = AuditTestLog.Layout(_dir.Path);
        var checkedBytes = 0;
        foreach (var path in Directory.GetFiles(_dir.Path, "audit-*.seg"))
        {
            var original = await File.ReadAllBytesAsync(path, TestContext.Current.CancellationToken);
            for (var at = 0; at < original.Length; at++)
            {
                var damaged = (byte[])original.Clone();
                damaged[at] ^= 0x5A;
                await File.WriteAllBytesAsync(path, damaged, TestContext.Current.CancellationToken);
                var damage = AuditReader.Verify(_dir.Path).Damage;
                Assert.NotNull(damage);

                // A header byte blames the segment's first record; a record byte blames that record, at its offset.
                var inFile = layout.Where(r => r.Path == path).ToList();
                var hit = inFile.LastOrDefault(r => r.Offset <= at);
                var expectedSequence = at < 52 ? inFile[0].Sequence : hit.Sequence;
                var expectedOffset = at < 52 ? 0 : hit.Offset;
                Assert.Equal(expectedSequence, damage.Sequence);
                Assert.Equal(expectedOffset, damage.Offset);
                Assert.Equal(Path.GetFileName(path), damage.Segment);
                checkedBytes++;
            }

            await File.WriteAllBytesAsync(path, original, TestContext.Current.CancellationToken);
        }

        Assert.True(AuditReader.Verify(_dir.Path).IsValid);
        Assert.True(checkedBytes > 500);
    }

    [Fact]
    public async Task Deleting_any_record_is_reported_at_its_sequence()
    {
        await AuditTestLog.WriteAsync(_dir.Path, 8, SmallSegments);
        var layout = AuditTestLog.Layout(_dir.Path);
        foreach (var victim in layout)
        {
            var original = await File.ReadAllBytesAsync(victim.Path, TestContext.Current.CancellationToken);
            var without = original.Take((int)victim.Offset).Concat(original.Skip((int)victim.Offset + victim.Length)).ToArray();
            await File.WriteAllBytesAsync(victim.Path, without, TestContext.Current.CancellationToken);
            var damage = AuditReader.Verify(_dir.Path).Damage;
            Assert.NotNull(damage);
            Assert.Equal(victim.Sequence, damage.Sequence);
            await File.WriteAllBytesAsync(victim.Path, original, TestContext.Current.CancellationToken);
        }
    }

    [Fact]
    public async Task Swapping_two_adjacent_records_is_reported_at_the_first_of_them()
    {
        await AuditTestLog.WriteAsync(_dir.Path, 8, SmallSegments);
        var layout = AuditTestLog.Layout(_dir.Path);
        var swaps = 0;
        for (var i = 0; i + 1 < layout.Count; i++)
        {
            var (a, b) = (layout[i], layout[i + 1]);
            if (a.Path != b.Path)
            {
                continue;
            }

            var original = await File.ReadAllBytesAsync(a.Path, TestContext.Current.CancellationToken);
            var swapped = original.Take((int)a.Offset)
                .Concat(original.Skip((int)b.Offset).Take(b.Length))
                .Concat(original.Skip((int)a.Offset).Take(a.Length))
                .Concat(original.Skip((int)b.Offset + b.Length)).ToArray();
            await File.WriteAllBytesAsync(a.Path, swapped, TestContext.Current.CancellationToken);
            var damage = AuditReader.Verify(_dir.Path).Damage;
            Assert.NotNull(damage);
            Assert.Equal(a.Sequence, damage.Sequence);
            Assert.Equal(a.Offset, damage.Offset);
            await File.WriteAllBytesAsync(a.Path, original, TestContext.Current.CancellationToken);
            swaps++;
        }

        Assert.True(swaps >= 3);
    }

    [Fact]
    public async Task Deleting_a_whole_middle_segment_is_reported_at_its_first_sequence()
    {
        await AuditTestLog.WriteAsync(_dir.Path, 20, SmallSegments);
        var segments = Directory.GetFiles(_dir.Path, "audit-*.seg").Order(StringComparer.Ordinal).ToArray();
        var firstOfMiddle = AuditTestLog.Layout(_dir.Path).First(r => r.Path == segments[1]).Sequence;
        File.Delete(segments[1]);
        var damage = AuditReader.Verify(_dir.Path).Damage;
        Assert.NotNull(damage);
        Assert.Equal(firstOfMiddle, damage.Sequence);
    }
}
