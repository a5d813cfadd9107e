namespace SecureChannels.Protocol.Policy;

/// <summary>
/// Where a policy's names get their values: the verified view of the peer (<c>peer.identifier</c>,
/// <c>peer.principal</c>, <c>peer.chain_length</c>), the effective attributes from its credentials
/// (<c>subject.role</c>) and the application's context (<c>context.resource</c>).
/// </summary>
/// <remarks>
/// Evaluation may call <see cref="TryGetValue"/> several times per name and in any order, so an implementation
/// must be side-effect free and consistent for the length of one evaluation. To keep per-message evaluation
/// allocation-free, it should not allocate either (for example: build the <see cref="PolicyValue"/>s once per
/// channel, not per lookup). If it throws, or reports a name as present with <c>default(PolicyValue)</c>, the
/// evaluation denies.
/// </remarks>
public interface IPolicyInput
{
    /// <summary>Looks up <paramref name="name"/> (compared ordinally). Returns false when the name has no value.</summary>
    /// <param name="name">A dotted name as written in the policy, for example <c>subject.role</c>.</param>
    /// <param name="value">The value when found.</param>
    bool TryGetValue(string name, out PolicyValue value);
}
