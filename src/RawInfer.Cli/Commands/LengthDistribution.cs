using System.Globalization;

namespace RawInfer.Cli.Commands;

/// <summary>
/// The prompt or output lengths of a benchmark workload (<c>--prompt-lengths</c>, <c>--output-lengths</c>):
/// <c>MIN:MAX</c> draws uniformly from MIN..MAX; <c>geometric:MEAN:MAX</c> draws the length at which a request
/// would end if each token stopped it with probability 1/MEAN (a model that emits EOS at a constant rate), capped
/// at MAX. Uniform lengths vary within a factor of MAX/MIN; geometric ones have a long tail (the longest of 100
/// draws is about 5x the mean), and a static batch runs until its longest request ends.
/// </summary>
internal sealed class LengthDistribution
{
    private readonly double _logStay; // ln(1 - 1/MEAN) of a geometric distribution; 0 for a uniform one

    private LengthDistribution(int min, int max, double mean, bool geometric)
    {
        (Min, Max, Mean, IsGeometric) = (min, max, mean, geometric);
        _logStay = geometric && mean > 1 ? Math.Log(1 - (1 / mean)) : 0;
    }

    /// <summary>The shortest length drawn.</summary>
    public int Min { get; }

    /// <summary>The longest length drawn (a geometric distribution's cap).</summary>
    public int Max { get; }

    /// <summary>The MEAN of <c>geometric:MEAN:MAX</c> before the cap; (MIN + MAX) / 2 for a uniform one.</summary>
    public double Mean { get; }

    public bool IsGeometric { get; }

    /// <summary>Parses <paramref name="text"/> as <c>MIN:MAX</c> or <c>geometric:MEAN:MAX</c>.</summary>
    /// <exception cref="CliException">The text is neither form, or its numbers are out of range.</exception>
    public static LengthDistribution Parse(string text, string option)
    {
        var parts = text.Split(':');
        if (parts.Length == 3 && parts[0].Equals("geometric", StringComparison.OrdinalIgnoreCase))
        {
            if (!double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var mean)
                || !int.TryParse(parts[2], CultureInfo.InvariantCulture, out var cap) || !(mean >= 1) || cap < mean)
            {
                throw new CliException($"{option} geometric:MEAN:MAX needs 1 <= MEAN <= MAX, not '{text}'");
            }

            return new LengthDistribution(1, cap, mean, geometric: true);
        }

        if (parts.Length != 2 || !int.TryParse(parts[0], CultureInfo.InvariantCulture, out var min)
            || !int.TryParse(parts[1], CultureInfo.InvariantCulture, out var max) || min < 1 || max < min)
        {
            throw new CliException($"{option} must be MIN:MAX with 1 <= MIN <= MAX, or geometric:MEAN:MAX, not '{text}'");
        }

        return new LengthDistribution(min, max, (min + max) / 2.0, geometric: false);
    }

    /// <summary>One length in <see cref="Min"/>..<see cref="Max"/>.</summary>
    public int Sample(Random random)
    {
        if (!IsGeometric)
        {
            return random.Next(Min, Max + 1); // one draw, as the workloads made before geometric lengths existed
        }

        if (_logStay == 0)
        {
            return 1; // MEAN 1: every request stops at its first token
        }

        // inversion: P(L > k) = (1 - 1/MEAN)^k, so L = 1 + floor(ln U / ln(1 - 1/MEAN)) for U uniform in (0, 1]
        var u = 1 - random.NextDouble();
        var length = 1 + Math.Floor(Math.Log(u) / _logStay);
        return length >= Max ? Max : (int)length;
    }

    public override string ToString() => IsGeometric
        ? string.Create(CultureInfo.InvariantCulture, $"geometric, mean {Mean:0.##}, max {Max}")
        : string.Create(CultureInfo.InvariantCulture, $"uniform {Min}..{Max}");
}
