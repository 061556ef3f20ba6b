// dbus-batterybank GUI v1: sum and spread of the cells, balancing, and the page with every cell as a bar.
import QtQuick 2
import com.victron.velib 1.0
import "utils.js" as Utils
import "batterybank-paths.js" as BankPaths

MbPage {
	id: root

	property string bindPrefix
	property VBusItem cellsPerBattery: VBusItem { bind: Utils.path(root.bindPrefix, "/System/NrOfCellsPerBattery") }
	property VBusItem nrOfBatteries: VBusItem { bind: Utils.path(root.bindPrefix, BankPaths.NR_OF_BATTERIES) }
	property VBusItem balancing: VBusItem { bind: Utils.path(root.bindPrefix, "/Balancing") }
	property int memberCellSum: 0
	property int cellCount: BankPaths.cellCount(cellsPerBattery.valid ? cellsPerBattery.value : undefined,
		nrOfBatteries.valid ? nrOfBatteries.value : undefined, memberCellSum)

	function sumMemberCells() {
		var sum = 0
		for (var i = 0; i < members.count; i++) {
			var m = members.itemAt(i)
			if (m && m.cells.valid)
				sum += m.cells.value
		}
		memberCellSum = sum
	}

	// A bank whose batteries differ in cell count publishes no cells-per-battery: add up the members' counts.
	Item {
		visible: false
		Repeater {
			id: members
			model: VeQItemTableModel {
				uids: [Utils.path("dbus/", root.bindPrefix, BankPaths.MEMBERS)]
				flags: VeQItemTableModel.AddChildren | VeQItemTableModel.AddNonLeaves | VeQItemTableModel.DontAddItem
			}
			delegate: Item {
				property VBusItem cells: VBusItem {
					bind: Utils.path(model.uid, BankPaths.MEMBER_NR_OF_CELLS)
					onValueChanged: root.sumMemberCells()
				}
			}
			onItemAdded: root.sumMemberCells()
			onItemRemoved: root.sumMemberCells()
		}
	}

	model: VisibleItemModel {
		MbItemValue {
			description: qsTr("Sum of cells")
			item.bind: Utils.path(root.bindPrefix, "/Voltages/Sum")
			show: item.valid
		}
		MbItemValue {
			description: qsTr("Difference highest - lowest")
			item.bind: Utils.path(root.bindPrefix, "/Voltages/Diff")
			show: item.valid
		}
		MbItemValue {
			description: qsTr("Balancing")
			item.value: root.balancing.valid ? (root.balancing.value === 1 ? qsTr("Active") : qsTr("Inactive")) : "--"
			show: root.balancing.valid
		}
		MbSubMenu {
			description: qsTr("Cell voltages")
			show: root.cellCount > 0
			subpage: Component {
				PageBatterybankCellBars {
					title: qsTr("Cell voltages")
					bindPrefix: root.bindPrefix
					cellCount: root.cellCount
				}
			}
		}
	}
}
