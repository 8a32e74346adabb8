using System.CommandLine;
using System.Globalization;
using System.Text;
using RawInfer.Safety.Audit;

namespace RawInfer.Cli.Commands;

/// <summary>
/// <c>rawinfer audit verify DIR</c>, <c>rawinfer audit query DIR [filters]</c>, <c>rawinfer audit forget DIR KEYID</c>:
/// offline tools for the server's audit trail.
/// </summary>
internal static class AuditCommand
{
    public static Command Create(TextWriter output, TextWriter error)
    {
        var audit = new Command("audit", "Verify, query and erase content in an audit log directory.");
        audit.Subcommands.Add(CreateVerify(output, error));
        audit.Subcommands.Add(CreateQuery(output, error));
        audit.Subcommands.Add(CreateForget(output, error));
        return audit;
    }

    private static Argument<string> DirArgument() => new("dir") { Description = "Audit log directory." };

    private static Command CreateVerify(TextWriter output, TextWriter error)
    {
        var dir = DirArgument();
        var command = new Command("verify", "Recompute every CRC and the hash chain; name the first bad sequence number and offset.");
        command.Arguments.Add(dir);
        command.SetAction((parse, _) => CliApp.Guard(error, () =>
        {
            var result = AuditReader.Verify(parse.GetValue(dir)!);
            if (result.Damage is { } damage)
            {
                throw new CliException(string.Create(CultureInfo.InvariantCulture,
                    $"audit log damaged: first bad sequence {damage.Sequence} at offset {damage.Offset} of {damage.Segment}: {damage.Reason} ({result.Records} records before it verified)"));
            }

            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"ok: {result.Records} records, sequences {result.FirstSequence}..{result.LastSequence}, chain hash {result.LastHash}"));
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command CreateQuery(TextWriter output, TextWriter error)
    {
        var dir = DirArgument();
        var keyId = new Option<string?>("--key-id") { Description = "Only records of this API key id." };
        var requestId = new Option<string?>("--request-id") { Description = "Only records of this request id." };
        var since = new Option<string?>("--since") { Description = "Only records at or after this time (ISO 8601)." };
        var until = new Option<string?>("--until") { Description = "Only records at or before this time (ISO 8601)." };
        var decrypt = new Option<bool>("--decrypt") { Description = "Show stored prompts and outputs whose data key still exists." };
        var command = new Command("query", "Print audit records by key id, request id or time range, one per line.");
        command.Arguments.Add(dir);
        command.Options.Add(keyId);
        command.Options.Add(requestId);
        command.Options.Add(since);
        command.Options.Add(until);
        command.Options.Add(decrypt);
        command.SetAction((parse, _) => CliApp.Guard(error, () =>
        {
            var path = parse.GetValue(dir)!;
            var query = new AuditQuery(parse.GetValue(keyId), parse.GetValue(requestId),
                ParseTime(parse.GetValue(since), "--since"), ParseTime(parse.GetValue(until), "--until"));
            var records = AuditReader.Query(path, query);
            var content = parse.GetValue(decrypt) ? AuditContentProtector.ForDirectory(path) : null;
            foreach (var record in records)
            {
                output.WriteLine(Format(record, content));
            }

            error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{records.Count} records"));
            return Task.FromResult(0);
        }));
        return command;
    }

    private static Command CreateForget(TextWriter output, TextWriter error)
    {
        var dir = DirArgument();
        var keyId = new Argument<string>("key-id") { Description = "API key id whose stored content becomes unreadable." };
        var command = new Command("forget", "Destroy a key's data key (crypto-shredding); the chain still verifies and the erasure is audited.");
        command.Arguments.Add(dir);
        command.Arguments.Add(keyId);
        command.SetAction((parse, ct) => CliApp.Guard(error, async () =>
        {
            var path = parse.GetValue(dir)!;
            if (!Directory.Exists(path))
            {
                throw new CliException($"audit directory {path} does not exist");
            }

            var id = parse.GetValue(keyId)!;
            await using var log = AuditLog.Open(path);
            var existed = await log.ForgetAsync(id, actorKeyId: null, ct).ConfigureAwait(false);
            output.WriteLine(existed
                ? $"forgot the data key of {id}; its stored content is unreadable (erasure recorded)"
                : $"{id} had no data key; erasure recorded");
            return 0;
        }));
        return command;
    }

    private static DateTimeOffset? ParseTime(string? text, string option)
    {
        if (text is null)
        {
            return null;
        }

        if (!DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var time))
        {
            throw new CliException($"{option}: '{text}' is not a time (use ISO 8601, e.g. 2026-01-31T12:00:00Z)");
        }

        return time;
    }

    private static string Format(AuditRecord record, AuditContentProtector? content)
    {
        var inv = CultureInfo.InvariantCulture;
        var line = new StringBuilder();
        line.Append(inv, $"{record.Sequence} {record.Timestamp.ToString("O", inv)} {record.Type}");
        line.Append(inv, $" key={record.KeyId ?? "-"} addr={record.ClientAddress ?? "-"} req={record.RequestId ?? "-"}");
        foreach (var (name, value) in record.Event.FieldList)
        {
            if (name.EndsWith("_enc", StringComparison.Ordinal))
            {
                var plain = content?.TryDecrypt(record, name[..^4]);
                line.Append(inv, $" {name[..^4]}={(plain is null ? "<encrypted>" : Quote(plain))}");
                continue;
            }

            line.Append(inv, $" {name}={Quote(value)}");
        }

        return line.ToString();
    }

    private static string Quote(string value) =>
        value.Length > 0 && !value.Any(c => char.IsWhiteSpace(c) || c == '"' || char.IsControl(c))
            ? value
            : System.Text.Json.JsonSerializer.Serialize(value);
}
