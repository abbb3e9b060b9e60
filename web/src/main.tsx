/** The dashboard page: reads its address (token, devices), adds the devices, renders the app. */
import { render } from 'preact';
// uPlot's stylesheet is tiny: it goes in app.css (a lazily loaded chunk's CSS would not load by itself).
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { App, Devices, readPageConfig } from './app.tsx';

const devices = new Devices(readPageConfig());
for (const d of devices.config.devices) devices.addBridge(d);
render(<App devices={devices} />, document.getElementById('app')!);
// For tests and debugging: the page's state.
(globalThis as unknown as { dashboard: Devices }).dashboard = devices;
