using SecureChannels.Fuzz.Targets;

namespace SecureChannels.Fuzz;

/// <summary>Every target, by name: the one table the program, run.sh and the replay tests read.</summary>
public static class FuzzTargets
{
    public static IReadOnlyList<IFuzzTarget> All { get; } =
    [
        new NoiseHandshakeTarget(),
        new TransportTarget(),
        new HandshakePayloadTarget(),
        new IdentityHistoryTarget(),
        new KeyAttestationTarget(),
        new CredentialTarget(),
        new CredentialChainTarget(),
        new RevocationListTarget(),
        new PolicyTarget(),
        new RelayFramesTarget(),
        new MessagesTarget(),
        new TextTarget(),
        new ChannelRecordsTarget(),
        new AuditLogTarget(),
    ];

    public static IFuzzTarget? Find(string name) => All.FirstOrDefault(t => t.Name == name);
}
