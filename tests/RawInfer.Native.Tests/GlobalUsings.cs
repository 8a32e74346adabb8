global using RawInfer.Native;
global using Xunit;
