global using System.Buffers;
global using RawInfer.Protocol;
global using Xunit;
