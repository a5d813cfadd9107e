using System.Text;
using SecureChannels.Authority.Audit;
using SecureChannels.Authority.Storage;

namespace SecureChannels.Fuzz.Targets;

/// <summary>
/// The authority's exported audit log (JSON lines). First byte 0: each line through <see cref="AuditJson.ParseLine(ReadOnlySpan{byte}, long)"/>,
/// the parsed records through <see cref="AuditChain.Verify"/> against the fixed authority (a verdict, never an exception);
/// a parsed record formats back to a line that parses to the same text. 1: <see cref="AuditHead.TryParse"/> (prints back
/// to itself). 2 (signed): the parsed records' contents are sealed again as a chain by the authority, which must then
/// verify intact. Expected: <see cref="AuditFormatException"/> for a line that is not a record.
/// </summary>
public sealed class AuditLogTarget : IFuzzTarget
{
    private const int MaxLines = 16;

    public string Name => "audit-log";

    public void Run(ReadOnlySpan<byte> input)
    {
        if (input.IsEmpty)
        {
            return;
        }

        var mode = input[0] % 3;
        if (mode == 1)
        {
            var text = Encoding.UTF8.GetString(input[1..]);
            if (AuditHead.TryParse(text, out var head) && (!AuditHead.TryParse(head.ToString(), out var again) || !again.Equals(head)))
            {
                throw new FuzzInvariantException("An audit head does not print back to itself.");
            }

            return;
        }

        var records = new List<AuditRecord>();
        var rest = input[1..];
        for (var n = 1; n <= MaxLines && !rest.IsEmpty; n++)
        {
            var end = rest.IndexOf((byte)'\n');
            var line = end < 0 ? rest : rest[..end];
            rest = end < 0 ? [] : rest[(end + 1)..];
            try
            {
                var record = AuditJson.ParseLine(line, n);
                var formatted = AuditJson.Format(record);
                if (AuditJson.Format(AuditJson.ParseLine(formatted, n)) != formatted)
                {
                    throw new FuzzInvariantException("A parsed audit record does not format and parse back to the same line.");
                }

                records.Add(record);
            }
            catch (AuditFormatException)
            {
            }
        }

        if (mode == 0)
        {
            AuditChain.Verify(records, FuzzWorld.Authority.Verified);
            return;
        }

        AuditRecord? previous = null;
        var sealedRecords = new List<AuditRecord>();
        // Sealing refuses times before 1970 by contract; the parser's own range is checked by mode 0.
        foreach (var r in records.Where(r => r.At >= DateTimeOffset.UnixEpoch))
        {
            previous = AuditChain.SealAsync(previous, new AuditDraft(r.At, r.Actor, r.Principal, r.Action, r.Target, r.Reason), FuzzWorld.Authority).GetAwaiter().GetResult();
            sealedRecords.Add(previous);
        }

        var verdict = AuditChain.Verify(sealedRecords, FuzzWorld.Authority.Verified, previous is null ? null : new AuditHead(previous.Sequence, previous.Hash));
        if (!verdict.IsIntact)
        {
            throw new FuzzInvariantException($"A chain the authority sealed itself does not verify: {verdict.Failure}: {verdict.Detail}");
        }
    }

    public IEnumerable<byte[]> Seeds()
    {
        AuditDraft[] drafts =
        [
            new(FuzzWorld.Now, FuzzWorld.Alice.Identifier.ToString(), "user:alice@example.com", "issue", "credential 0102", "enrolled with a ticket"),
            new(FuzzWorld.Now.AddSeconds(1), FuzzWorld.Authority.Identifier.ToString(), "self", "revoke", "subject " + FuzzWorld.Bob.Identifier, "lost laptop \"quoted\" \u00e9"),
            new(FuzzWorld.Now.AddSeconds(2), "operator", "team:ops", "publish-policy", "ledger v2", ""),
        ];
        AuditRecord? previous = null;
        var lines = new List<string>();
        foreach (var draft in drafts)
        {
            previous = AuditChain.SealAsync(previous, draft, FuzzWorld.Authority).GetAwaiter().GetResult();
            lines.Add(AuditJson.Format(previous));
        }

        var log = Encoding.UTF8.GetBytes(string.Join('\n', lines));
        yield return [0, .. log];
        yield return [2, .. log];
        yield return [0, .. Encoding.UTF8.GetBytes(lines[0])];
        yield return [1, .. Encoding.UTF8.GetBytes(new AuditHead(previous!.Sequence, previous.Hash).ToString())];
    }
}
